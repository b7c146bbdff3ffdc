package config

import (
	"slices"
	"testing"

	"github.com/infleet/infleet/schemas"
)

func TestPhoneRegionsDefaultAndValidation(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, `
guardrails:
  input: {pii: {entities: [PHONE]}}
  output: {pii: {entities: [PHONE], phone_regions: [gb, DE]}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Guardrails.Input.PII.PhoneRegions; !slices.Equal(got, DefaultPhoneRegions) {
		t.Errorf("input phone_regions = %v, want the default %v", got, DefaultPhoneRegions)
	}
	if got := c.Guardrails.Output.PII.PhoneRegions; !slices.Equal(got, []string{"gb", "DE"}) {
		t.Errorf("output phone_regions = %v, want [gb DE]", got)
	}
	_, err = Load(writeConfig(t, `
guardrails:
  input: {pii: {entities: [PHONE], phone_regions: [GB, XX]}}
`), nil)
	got := problemsOf(t, err)
	want := []schemas.FieldError{{Field: "guardrails.input.pii.phone_regions[1]",
		Message: `"XX" is not a region with a phone numbering plan; use an ISO 3166-1 alpha-2 code such as US, GB or DE`}}
	if !slices.Equal(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
}
