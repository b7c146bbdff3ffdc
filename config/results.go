package config

import (
	"cmp"
	"time"
)

// Result store kinds (results.kind).
const (
	ResultsFile = "file"
	ResultsS3   = "s3"
)

// Defaults of the results section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultResultsKind     = ResultsFile
	DefaultS3PresignTTL    = 15 * time.Minute
	DefaultS3MaxInputBytes = 1 << 20
)

// Results chooses and configures where results are stored.
type Results struct {
	// Kind is file ({data_dir}/results/{job_id}.json) or s3. Default file.
	Kind string `yaml:"kind,omitempty"`
	S3   S3     `yaml:"s3,omitempty"`
}

// S3 configures the S3 result store: objects {prefix}{job_id}.json.
type S3 struct {
	// Bucket name. Required when results.kind is s3.
	Bucket string `yaml:"bucket,omitempty"`
	// Prefix of the object keys, e.g. "results/". Default "".
	Prefix string `yaml:"prefix,omitempty"`
	// SSE is the server-side encryption of written objects: "", AES256 or aws:kms. Default ""
	// (the bucket's default).
	SSE string `yaml:"sse,omitempty"`
	// KMSKeyID is the KMS key for SSE aws:kms. Default "" (the account's S3 key).
	KMSKeyID string `yaml:"kms_key_id,omitempty"`
	// Presign makes GET /v1/jobs/{id}/result redirect to a presigned URL instead of streaming
	// the object through the API. Default false.
	Presign bool `yaml:"presign,omitempty"`
	// PresignTTL is how long a presigned result URL stays valid. Default 15m.
	PresignTTL time.Duration `yaml:"presign_ttl,omitempty"`
	// MaxInputBytes caps the size of an input given as s3_uri. Default 1 MiB.
	MaxInputBytes int64 `yaml:"max_input_bytes,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client (path-style). Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// applyDefaults fills the results section's unset settings.
func (r *Results) applyDefaults() {
	r.Kind = cmp.Or(r.Kind, DefaultResultsKind)
	r.S3.PresignTTL = cmp.Or(r.S3.PresignTTL, DefaultS3PresignTTL)
	r.S3.MaxInputBytes = cmp.Or(r.S3.MaxInputBytes, DefaultS3MaxInputBytes)
}

// checkResults checks that an S3 result store names its bucket.
func (c *Config) checkResults(p *problems) {
	if c.Results.Kind == ResultsS3 && c.Results.S3.Bucket == "" {
		p.add("results.s3.bucket", "is required when results.kind is s3 (e.g. infleet-results)")
	}
}
