package nats_test

import (
	"testing"

	infnats "github.com/infleet/infleet/adapters/nats"
)

func TestSyncAlwaysIsWhatJetStreamRuns(t *testing.T) {
	t.Parallel()
	for _, want := range []bool{false, true} {
		srv, err := infnats.StartServer(infnats.ServerConfig{StoreDir: t.TempDir(), SyncAlways: want})
		if err != nil {
			t.Fatalf("start server: %v", err)
		}
		if got := srv.SyncAlways(); got != want {
			t.Errorf("ServerConfig.SyncAlways %v: JetStream runs with SyncAlways %v", want, got)
		}
		srv.Shutdown()
		if srv.SyncAlways() {
			t.Error("SyncAlways after Shutdown = true, want false")
		}
	}
}
