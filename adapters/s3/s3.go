// Package s3 keeps infleet's result objects and archive in an S3 bucket and reads job inputs
// given as s3:// URIs.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Defaults of Config.
const (
	// DefaultPartSize is the object size above which Put uploads in parts, and the part size.
	DefaultPartSize int64 = 8 << 20
	// DefaultMaxInputBytes caps an input read by Fetch.
	DefaultMaxInputBytes int64 = 1 << 20
)

// Server-side encryption values of Config.SSE.
const (
	SSES3  = "AES256"
	SSEKMS = "aws:kms"
)

// Config wires a Store. Client and Bucket are required.
type Config struct {
	// Client is an S3 client built by the caller (region, credentials, endpoint; path-style
	// addressing against emulators). Multipart uploads follow its RequestChecksumCalculation;
	// against fauxqs set it to aws.RequestChecksumCalculationWhenRequired.
	Client *awss3.Client
	// Bucket holds the objects; Prefix is put before every key (e.g. "results/"). Default "".
	Bucket, Prefix string
	// SSE is the server-side encryption asked for on every written object: "" (the bucket's
	// default), "AES256" or "aws:kms". Default "".
	SSE string
	// KMSKeyID is the KMS key for SSE "aws:kms". Default "" (the account's S3 key).
	KMSKeyID string
	// PartSize is the size above which Put uploads in parts, and the part size (at least
	// 5 MiB). Default 8 MiB.
	PartSize int64
	// MaxInputBytes caps the size of an object Fetch reads. Default 1 MiB.
	MaxInputBytes int64
	Logger        zerolog.Logger
}

// Validate reports every problem of cfg, naming the field and the fix.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("s3: Client is nil: build an S3 client first"))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("s3: Bucket is empty: set results.s3.bucket"))
	}
	switch cfg.SSE {
	case "", SSES3, SSEKMS:
	default:
		errs = append(errs, fmt.Errorf("s3: SSE %q is not one of \"\", %q or %q", cfg.SSE, SSES3, SSEKMS))
	}
	if cfg.KMSKeyID != "" && cfg.SSE != SSEKMS {
		errs = append(errs, fmt.Errorf("s3: KMSKeyID is set but SSE is %q: set SSE to %q or drop the key", cfg.SSE, SSEKMS))
	}
	if cfg.PartSize != 0 && cfg.PartSize < manager.MinUploadPartSize {
		errs = append(errs, fmt.Errorf("s3: PartSize %d is below S3's minimum part size of %d bytes", cfg.PartSize, manager.MinUploadPartSize))
	}
	if cfg.MaxInputBytes < 0 {
		errs = append(errs, errors.New("s3: MaxInputBytes is negative"))
	}
	return errors.Join(errs...)
}

// Store is a pipeline.BlobStore on one S3 bucket, with the optional abilities BlobLister,
// BlobDeleter and Checker, and a pipeline.InputFetcher for s3:// inputs in any bucket the
// credentials can read. Safe for concurrent use.
type Store struct {
	cfg      Config
	uploader *manager.Uploader
	presign  *awss3.PresignClient
}

var (
	_ pipeline.BlobStore        = (*Store)(nil)
	_ pipeline.BlobLister       = (*Store)(nil)
	_ pipeline.BlobDeleter      = (*Store)(nil)
	_ pipeline.BlobBatchDeleter = (*Store)(nil)
	_ pipeline.InputFetcher     = (*Store)(nil)
	_ pipeline.Checker          = (*Store)(nil)
)

// New validates cfg, applies its defaults and returns a Store. It does no I/O: call Check to
// find out whether the bucket is there.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.PartSize = cmp.Or(cfg.PartSize, DefaultPartSize)
	cfg.MaxInputBytes = cmp.Or(cfg.MaxInputBytes, DefaultMaxInputBytes)
	up := manager.NewUploader(cfg.Client, func(u *manager.Uploader) {
		u.PartSize = cfg.PartSize
		u.LeavePartsOnError = false
		// Follow the client's checksum setting: emulators that cannot parse part checksums
		// in CompleteMultipartUpload (fauxqs) need WhenRequired on the client.
		if c := cfg.Client.Options().RequestChecksumCalculation; c != 0 {
			u.RequestChecksumCalculation = c
		}
	})
	return &Store{cfg: cfg, uploader: up, presign: awss3.NewPresignClient(cfg.Client)}, nil
}

func (s *Store) key(key string) string { return s.cfg.Prefix + key }

// Put stores data under Prefix+key, replacing what was there. Objects larger than PartSize go
// up as a multipart upload, which S3 makes visible only when it completes, so a reader sees
// the old object or the whole new one, never a part; a failed multipart upload is aborted.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	in := &awss3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(s.key(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType(key)),
	}
	if s.cfg.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(s.cfg.SSE)
	}
	if s.cfg.KMSKeyID != "" {
		in.SSEKMSKeyId = aws.String(s.cfg.KMSKeyID)
	}
	if _, err := s.uploader.Upload(ctx, in); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.cfg.Bucket, s.key(key), explain(err, s.cfg.Bucket, s.key(key)))
	}
	return nil
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	case strings.HasSuffix(key, ".jsonl"):
		return "application/x-ndjson"
	}
	return "application/octet-stream"
}

// Get streams the object under Prefix+key; the caller closes it. A missing object is
// pipeline.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.cfg.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(key))})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, pipeline.ErrNotFound
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.cfg.Bucket, s.key(key), explain(err, s.cfg.Bucket, s.key(key)))
	}
	return out.Body, nil
}

// List returns the keys under Prefix+prefix, relative to Prefix, sorted, reading every page.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	p := awss3.NewListObjectsV2Paginator(s.cfg.Client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(s.key(prefix)),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.cfg.Bucket, s.key(prefix), explain(err, s.cfg.Bucket, ""))
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), s.cfg.Prefix))
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete removes the object under Prefix+key; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.cfg.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(key))})
	if err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("delete s3://%s/%s: %w", s.cfg.Bucket, s.key(key), explain(err, s.cfg.Bucket, s.key(key)))
	}
	return nil
}

// maxDeleteKeys is the most keys one DeleteObjects request takes.
const maxDeleteKeys = 1000

// DeleteBatch removes the objects under Prefix+key for every key, in DeleteObjects requests of
// up to 1,000 keys; missing objects are not an error. It returns every key S3 could not delete
// (access denied, say), after trying them all. It implements pipeline.BlobBatchDeleter.
func (s *Store) DeleteBatch(ctx context.Context, keys []string) error {
	var errs []error
	for chunk := range slices.Chunk(keys, maxDeleteKeys) {
		objs := make([]types.ObjectIdentifier, len(chunk))
		for i, k := range chunk {
			objs[i] = types.ObjectIdentifier{Key: aws.String(s.key(k))}
		}
		out, err := s.cfg.Client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{
			Bucket: aws.String(s.cfg.Bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %d objects from s3://%s/%s: %w", len(chunk), s.cfg.Bucket, s.cfg.Prefix, explain(err, s.cfg.Bucket, "")))
			continue
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			errs = append(errs, fmt.Errorf("delete s3://%s/%s: %s: %s", s.cfg.Bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
	}
	return errors.Join(errs...)
}

// PresignGet returns a URL that fetches the object under Prefix+key with a plain GET for ttl.
// It signs locally and does not check that the object exists.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(key))},
		awss3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign s3://%s/%s: %w", s.cfg.Bucket, s.key(key), err)
	}
	return req.URL, nil
}

// Signer returns the store as a pipeline.BlobURLSigner whose URLs stay valid for ttl.
func (s *Store) Signer(ttl time.Duration) pipeline.BlobURLSigner { return signer{s: s, ttl: ttl} }

type signer struct {
	s   *Store
	ttl time.Duration
}

func (g signer) SignedURL(ctx context.Context, key string) (string, error) {
	return g.s.PresignGet(ctx, key, g.ttl)
}

// Check reports whether the bucket exists and the credentials can reach it (HeadBucket).
func (s *Store) Check(ctx context.Context) error {
	_, err := s.cfg.Client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err != nil {
		if isNotFound(err) {
			return missingBucket(s.cfg.Bucket)
		}
		return fmt.Errorf("S3 bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}

// Fetch reads the text of an input given as s3://bucket/key, in any bucket. An object larger
// than MaxInputBytes, a missing object or bucket, access denied and a malformed URI are
// permanent failures (pipeline.Permanent with messages.ErrCodeInvalidJob): retrying cannot
// help. Other errors (network, throttling) are returned as they are, so the job is retried.
func (s *Store) Fetch(ctx context.Context, uri string) (string, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return "", pipeline.Permanent(messages.ErrCodeInvalidJob, err)
	}
	out, err := s.cfg.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		err = explain(err, bucket, key)
		if isNoSuchKey(err) || isNoSuchBucket(err) {
			return "", pipeline.Permanent(messages.ErrCodeInvalidJob, fmt.Errorf("input %s: %w", uri, err))
		}
		if apiCode(err) == "AccessDenied" {
			return "", pipeline.Permanent(messages.ErrCodeInvalidJob,
				fmt.Errorf("input %s: access denied: grant infleet's role s3:GetObject on it, or give the input another way: %w", uri, err))
		}
		return "", fmt.Errorf("input %s: %w", uri, err)
	}
	defer out.Body.Close()
	limit := s.cfg.MaxInputBytes
	if n := aws.ToInt64(out.ContentLength); n > limit {
		return "", pipeline.Permanent(messages.ErrCodeInvalidJob, tooLarge(uri, n, limit))
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("input %s: read: %w", uri, err)
	}
	if int64(len(data)) > limit {
		return "", pipeline.Permanent(messages.ErrCodeInvalidJob, tooLarge(uri, int64(len(data)), limit))
	}
	return string(data), nil
}

func tooLarge(uri string, size, limit int64) error {
	return fmt.Errorf("input %s is %d bytes, over the limit of %d bytes (results.s3.max_input_bytes): split the input or raise the limit", uri, size, limit)
}

// ParseURI splits s3://bucket/key into its bucket and key.
func ParseURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("input %q is not an s3:// URI: give it as s3://bucket/key", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("input %q names no bucket or no key: give it as s3://bucket/key", uri)
	}
	return bucket, key, nil
}

// EnsureBucket creates bucket unless it exists already (owned by these credentials). It is
// idempotent and safe to run from several processes at once.
func EnsureBucket(ctx context.Context, client *awss3.Client, bucket string) error {
	if _, err := client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	in := &awss3.CreateBucketInput{Bucket: aws.String(bucket)}
	if r := client.Options().Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	_, err := client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		var exists *types.BucketAlreadyExists
		if errors.As(err, &exists) {
			return fmt.Errorf("create S3 bucket %q: the name is taken by another account: choose another results.s3.bucket", bucket)
		}
		return fmt.Errorf("create S3 bucket %q: %w", bucket, err)
	}
	return nil
}

// missingBucketError names a bucket that does not exist and how to get it.
type missingBucketError struct{ bucket string }

func (e *missingBucketError) Error() string {
	return fmt.Sprintf("S3 bucket %q does not exist: run \"infleet init\" or create it", e.bucket)
}

func missingBucket(bucket string) error { return &missingBucketError{bucket: bucket} }

// missingKeyError names an object that does not exist.
type missingKeyError struct{ bucket, key string }

func (e *missingKeyError) Error() string {
	return fmt.Sprintf("S3 object %q does not exist in bucket %q", e.key, e.bucket)
}

// explain turns S3's missing-bucket and missing-key errors into ones that name what is missing.
func explain(err error, bucket, key string) error {
	var nb *types.NoSuchBucket
	if errors.As(err, &nb) || apiCode(err) == "NoSuchBucket" {
		return missingBucket(bucket)
	}
	var nk *types.NoSuchKey
	if errors.As(err, &nk) || apiCode(err) == "NoSuchKey" {
		return &missingKeyError{bucket: bucket, key: key}
	}
	return err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNoSuchKey(err error) bool {
	var nk *types.NoSuchKey
	var mk *missingKeyError
	return errors.As(err, &nk) || errors.As(err, &mk) || apiCode(err) == "NoSuchKey"
}

func isNoSuchBucket(err error) bool {
	var nb *types.NoSuchBucket
	var mb *missingBucketError
	return errors.As(err, &nb) || errors.As(err, &mb) || apiCode(err) == "NoSuchBucket"
}

// isNotFound reports a 404 without a body, as HeadBucket and HeadObject answer.
func isNotFound(err error) bool {
	var nf *types.NotFound
	if errors.As(err, &nf) || isNoSuchBucket(err) {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}
