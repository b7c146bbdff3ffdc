package handlers

import "context"

type tenantKey struct{}

// ContextWithTenant returns ctx carrying tenant. Authentication middleware calls it once it knows
// who the caller is; every job route then acts for that tenant only.
func ContextWithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFromContext returns the tenant the request acts for. The empty tenant means the API is
// open (no auth configured): jobs are created without a tenant and every job is visible.
func TenantFromContext(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}
