package models

import "sync"

// Retry budget defaults.
const (
	DefaultBudgetRatio   = 0.2
	DefaultBudgetReserve = 10
	// budgetWindowCalls is how many calls' deposits the bucket can hold beyond the reserve,
	// so that a burst of concurrent calls may spend what the calls before it earned.
	budgetWindowCalls = 200
)

// RetryBudget is a token bucket that keeps retries a bounded share of calls: every first
// attempt deposits Ratio tokens, every retry withdraws one, and the bucket holds at most
// Reserve tokens plus the deposits of 200 calls. During an outage the retries stop once the
// bucket is empty, so a failing model sees at most (1+Ratio) times the calls it would see
// without retries, plus what the bucket held. Safe for concurrent use.
type RetryBudget struct {
	ratio   float64
	reserve float64
	ceiling float64

	mu     sync.Mutex
	tokens float64
}

// NewRetryBudget returns a full budget. ratio <= 0 means DefaultBudgetRatio; reserve <= 0
// means DefaultBudgetReserve. A ratio above 1 is allowed (several retries per call).
func NewRetryBudget(ratio float64, reserve int) *RetryBudget {
	b := &RetryBudget{ratio: cmpPos(ratio, DefaultBudgetRatio), reserve: float64(cmpPos(reserve, DefaultBudgetReserve))}
	b.tokens = b.reserve
	b.ceiling = b.reserve + b.ratio*budgetWindowCalls
	return b
}

// Deposit records a first attempt.
func (b *RetryBudget) Deposit() {
	b.mu.Lock()
	b.tokens = min(b.tokens+b.ratio, b.ceiling)
	b.mu.Unlock()
}

// Withdraw takes one retry from the budget and reports whether there was one.
func (b *RetryBudget) Withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
