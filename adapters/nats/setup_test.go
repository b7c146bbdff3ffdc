package nats_test

import (
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	infnats "github.com/infleet/infleet/adapters/nats"
)

// testBundle is an embedded server on a temporary store and one connection to it.
type testBundle struct {
	srv      *infnats.Server
	nc       *natsgo.Conn
	storeDir string
}

// setup starts an embedded server in t.TempDir() and connects to it; both stop at cleanup.
func setup(t testing.TB) *testBundle {
	t.Helper()
	dir := t.TempDir()
	srv, err := infnats.StartServer(infnats.ServerConfig{StoreDir: dir})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return &testBundle{srv: srv, nc: connect(t, srv), storeDir: dir}
}

// connect opens a connection closed at cleanup (before the server stops).
func connect(t testing.TB, srv *infnats.Server) *natsgo.Conn {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newPublisher(t testing.TB, nc *natsgo.Conn) *infnats.Publisher {
	t.Helper()
	pub, err := infnats.NewPublisher(infnats.PublisherConfig{Conn: nc})
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func newSubscriber(t testing.TB, cfg infnats.SubscriberConfig) *infnats.Subscriber {
	t.Helper()
	sub, err := infnats.NewSubscriber(cfg)
	if err != nil {
		t.Fatalf("new subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// The shared helpers of the transports' tests (deliverytest), by short names.
var (
	subscribe = deliverytest.Subscribe
	publishN  = deliverytest.PublishN
	receive   = deliverytest.Receive
	noMessage = deliverytest.NoMessage
)
