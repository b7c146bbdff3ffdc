package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunLeases runs the conformance suite of a pipeline.LeaseStore. open returns two stores on
// one backing store, standing for two processes of a fleet; keys are unique per subtest, so
// the backing store may be shared between subtests.
func RunLeases(t *testing.T, open func(t *testing.T) (a, b pipeline.LeaseStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.LeaseStore, key string)
	}{
		{"BoundHoldsAcrossStores", testLeaseBound},
		{"ReleaseFreesASlot", testLeaseRelease},
		{"ExpiredLeasesFreeTheirSlots", testLeaseExpiry},
		{"RenewByTheSameHolder", testLeaseRenew},
		{"ConcurrentLeasesNeverExceedTheLimit", testLeaseConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b, fmt.Sprintf("lease-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

var leaseT0 = time.Unix(1_700_000_000, 0)

func mustLease(t *testing.T, s pipeline.LeaseStore, key, holder string, limit int, expires, now time.Time) bool {
	t.Helper()
	ok, err := s.Lease(t.Context(), key, holder, limit, expires, now)
	if err != nil {
		t.Fatalf("lease %s for %s: %v", key, holder, err)
	}
	return ok
}

func testLeaseBound(t *testing.T, a, b pipeline.LeaseStore, key string) {
	exp := leaseT0.Add(time.Minute)
	if !mustLease(t, a, key, "h1", 2, exp, leaseT0) || !mustLease(t, b, key, "h2", 2, exp, leaseT0) {
		t.Fatal("the first two leases of a limit of 2 were refused")
	}
	if mustLease(t, a, key, "h3", 2, exp, leaseT0) || mustLease(t, b, key, "h4", 2, exp, leaseT0) {
		t.Fatal("a third lease of a limit of 2 was granted")
	}
	if !mustLease(t, a, key+"-other", "h3", 2, exp, leaseT0) {
		t.Fatal("another key's lease was refused: keys are counted apart")
	}
}

func testLeaseRelease(t *testing.T, a, b pipeline.LeaseStore, key string) {
	exp := leaseT0.Add(time.Minute)
	if !mustLease(t, a, key, "h1", 1, exp, leaseT0) {
		t.Fatal("first lease refused")
	}
	if mustLease(t, b, key, "h2", 1, exp, leaseT0) {
		t.Fatal("second lease of a limit of 1 granted")
	}
	if err := a.Release(t.Context(), key, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(t.Context(), key, "never-held"); err != nil {
		t.Fatalf("releasing a lease not held: %v, want no error", err)
	}
	if !mustLease(t, b, key, "h2", 1, exp, leaseT0) {
		t.Fatal("a released slot was not given to the next holder")
	}
}

func testLeaseExpiry(t *testing.T, a, b pipeline.LeaseStore, key string) {
	if !mustLease(t, a, key, "dead", 1, leaseT0.Add(time.Second), leaseT0) {
		t.Fatal("first lease refused")
	}
	if mustLease(t, b, key, "h2", 1, leaseT0.Add(time.Minute), leaseT0.Add(999*time.Millisecond)) {
		t.Fatal("a lease was granted while the other was unexpired")
	}
	if !mustLease(t, b, key, "h2", 1, leaseT0.Add(time.Minute), leaseT0.Add(time.Second)) {
		t.Fatal("an expired lease still held its slot (a dead process's slots must come back)")
	}
}

func testLeaseRenew(t *testing.T, a, b pipeline.LeaseStore, key string) {
	if !mustLease(t, a, key, "h1", 1, leaseT0.Add(time.Second), leaseT0) {
		t.Fatal("first lease refused")
	}
	if !mustLease(t, b, key, "h1", 1, leaseT0.Add(time.Minute), leaseT0) {
		t.Fatal("renewing a held lease was refused")
	}
	if mustLease(t, a, key, "h2", 1, leaseT0.Add(time.Minute), leaseT0.Add(30*time.Second)) {
		t.Fatal("the renewed lease expired at its first expiry")
	}
}

func testLeaseConcurrent(t *testing.T, a, b pipeline.LeaseStore, key string) {
	const limit, holders = 3, 24
	var held, peak, granted atomic.Int64
	var wg sync.WaitGroup
	for i := range holders {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			holder := fmt.Sprintf("h%d", i)
			for range 3 {
				ok, err := s.Lease(t.Context(), key, holder, limit, leaseT0.Add(time.Hour), leaseT0)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue
				}
				granted.Add(1)
				n := held.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Millisecond)
				held.Add(-1)
				if err := s.Release(t.Context(), key, holder); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Errorf("%d leases held at once, limit %d", peak.Load(), limit)
	}
	if granted.Load() < limit {
		t.Errorf("%d leases granted in all, want at least %d", granted.Load(), limit)
	}
}
