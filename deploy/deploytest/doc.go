// Package deploytest holds no code: its tests keep the deployment files under deploy/ (the
// Dockerfile, the Kubernetes manifests and the CloudFormation template) in step with the binary
// and its configuration. They read the files, the config schema and cmd/infleet's sources, and
// render the kustomize overlays (alone and with each component) with a pinned kustomize built
// from its Go module into the user's cache on first use (or $INFLEET_KUSTOMIZE), so rendering is
// checked on every machine. They need no Docker engine and no cluster.
package deploytest
