package nats_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	infnats "github.com/infleet/infleet/adapters/nats"
	"github.com/infleet/infleet/internal/disktest"
	"github.com/infleet/infleet/pipeline"
)

// fullDiskServer starts an embedded server whose store is on a small tmpfs, watched often.
func fullDiskServer(t *testing.T) (*infnats.Server, string) {
	t.Helper()
	mnt := disktest.Mount(t, "4m")
	srv, err := infnats.StartServer(infnats.ServerConfig{
		StoreDir:      filepath.Join(mnt, "nats"),
		WatchInterval: 20 * time.Millisecond,
		MinFreeBytes:  256 << 10,
		Logger:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv, mnt
}

func waitErr(t *testing.T, srv *infnats.Server, want func(error) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !want(srv.Err()) {
		if time.Now().After(deadline) {
			t.Fatalf("server Err %v after 10s, want %s", srv.Err(), what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isFull(err error) bool { return errors.Is(err, pipeline.ErrStorageFull) }
func isNil(err error) bool  { return err == nil }

// TestServerRestartsJetStreamWhenSpaceReturns pushes JetStream into a failed write on a full
// tmpfs, with a publisher that does not ask first: JetStream stops storing the stream, and Err
// says the disk is full. Once the filler is removed the server restarts JetStream by itself:
// a subscriber that ran throughout receives what is published afterwards, and nothing stored
// before is lost.
func TestServerRestartsJetStreamWhenSpaceReturns(t *testing.T) {
	t.Parallel()
	srv, mnt := fullDiskServer(t)
	nc := connect(t, srv)
	pub, err := infnats.NewPublisher(infnats.PublisherConfig{Conn: nc, PublishTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: nc, AckWait: time.Second})
	ch := subscribe(t, sub, "disk.jobs")
	publishN(t, pub, "disk.jobs", 1)
	receive(t, ch, 5*time.Second).Ack()
	if err := srv.Err(); err != nil {
		t.Fatalf("Err with space: %v", err)
	}

	filler := disktest.Fill(t, mnt)
	big := message.NewMessage(newID(), make([]byte, 64<<10))
	if err := pub.Publish("disk.jobs", big); err == nil {
		t.Fatal("publish on a full disk succeeded")
	}
	waitErr(t, srv, isFull, "ErrStorageFull")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitErr(t, srv, isNil, "nil once space returned")
	after := message.NewMessage(newID(), []byte("after"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := pub.Publish("disk.jobs", after) // the same id: a retry is stored once
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish once space returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := receive(t, ch, 15*time.Second)
	got.Ack()
	if got.UUID != after.UUID {
		t.Fatalf("received %s, want the message published after the restart", got.UUID)
	}
}

// TestGatedPublisherRefusesAtOnceOnFullDisk fills the disk under the server: a publisher gated
// on Err fails at once with ErrStorageFull instead of waiting out its timeout, JetStream never
// meets the full disk, and publishing works again when space returns.
func TestGatedPublisherRefusesAtOnceOnFullDisk(t *testing.T) {
	t.Parallel()
	srv, mnt := fullDiskServer(t)
	nc := connect(t, srv)
	pub, err := infnats.NewPublisher(infnats.PublisherConfig{Conn: nc, Gate: srv.Err})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "gated.jobs", 1)
	filler := disktest.Fill(t, mnt)
	waitErr(t, srv, isFull, "ErrStorageFull")
	start := time.Now()
	if err := pub.Publish("gated.jobs", message.NewMessage(newID(), []byte("x"))); !errors.Is(err, pipeline.ErrStorageFull) {
		t.Fatalf("gated publish on a full disk: %v, want ErrStorageFull", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("gated publish took %s to fail", d)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitErr(t, srv, isNil, "nil once space returned")
	publishN(t, pub, "gated.jobs", 1)
}
