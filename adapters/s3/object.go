package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object is one S3 object named by an s3://bucket/key URI, read whole: a document the process
// follows (a config), not a job input. Safe for concurrent use.
type Object struct {
	client      *awss3.Client
	bucket, key string
	uri         string
	max         int64
}

// NewObject returns the object uri names, read through client and refused above max bytes.
func NewObject(client *awss3.Client, uri string, max int64) (*Object, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	return &Object{client: client, bucket: bucket, key: key, uri: uri, max: max}, nil
}

// Version returns the object's ETag, which changes whenever the object does.
func (o *Object) Version(ctx context.Context) (string, error) {
	out, err := o.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
	if err != nil {
		return "", fmt.Errorf("read %s: %w", o.uri, err)
	}
	return aws.ToString(out.ETag), nil
}

// Read returns the object's bytes, or an error naming the object when it is missing,
// unreadable or larger than the limit.
func (o *Object) Read(ctx context.Context) ([]byte, error) {
	out, err := o.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.uri, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, o.max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.uri, err)
	}
	if int64(len(data)) > o.max {
		return nil, fmt.Errorf("%s is larger than %d bytes", o.uri, o.max)
	}
	return data, nil
}
