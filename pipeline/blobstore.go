package pipeline

import (
	"context"
	"io"
)

// BlobStore keeps result objects. Put overwrites, so writing a job's result twice leaves one
// object; implementations are safe for concurrent use.
type BlobStore interface {
	// Put stores data under key, replacing what was there; readers never see a partial object.
	// It does not keep data after it returns: the caller may reuse it.
	Put(ctx context.Context, key string, data []byte) error
	// Get opens the object under key, or returns ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// BlobLister is an optional ability of a BlobStore: the keys under a prefix, sorted.
type BlobLister interface {
	List(ctx context.Context, prefix string) ([]string, error)
}

// BlobDeleter is an optional ability of a BlobStore: removing an object (a missing one is not
// an error).
type BlobDeleter interface {
	Delete(ctx context.Context, key string) error
}

// BlobBatchDeleter is an optional ability of a BlobStore: removing many objects in few calls.
// Missing objects are not an error.
type BlobBatchDeleter interface {
	DeleteBatch(ctx context.Context, keys []string) error
}

// BlobURLSigner is an optional ability of a result store: a time-limited URL a client can
// fetch an object from directly. Implementations are safe for concurrent use.
type BlobURLSigner interface {
	SignedURL(ctx context.Context, key string) (string, error)
}

// InputFetcher reads a job input given by reference (s3_uri). It is optional: without one, such
// jobs fail with a message saying how to enable it.
type InputFetcher interface {
	Fetch(ctx context.Context, uri string) (string, error)
}

// BlobAppender is an optional ability of a BlobStore: adding data at the end of an object,
// creating it when missing, as one write that is as durable as a Put once Append returns.
// Appends to one key do not interleave; a reader may see the last append partly written (an
// object read while it grows ends with it). Implementations are safe for concurrent use.
type BlobAppender interface {
	// Append adds data at the end of the object under key. It does not keep data after it
	// returns, as Put.
	Append(ctx context.Context, key string, data []byte) error
}

// BlobStatter is an optional ability of a BlobStore: whether an object is under key, cheaper
// than opening it. Workers ask it before running a job whose record they did not read.
type BlobStatter interface {
	Exists(ctx context.Context, key string) (bool, error)
}
