package eventbridge

// Queued is how many events the batcher holds, not yet handed to PutEvents.
func (nt *Notifier) Queued() int { return int(nt.queued.Load()) }
