package handlers

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Bounds of the lingering close of a refused body (nginx's lingering_close): at most
// lingerFactor times MaxBodyBytes of the body are read and thrown away, for at most lingerTime.
const (
	lingerFactor = 4
	lingerTime   = 5 * time.Second
)

// refuseBody answers p to a request whose body the API will not read (over MaxBodyBytes, or
// no room for it under MaxInflightBodyBytes) so that a client that writes its whole body
// before it reads (Python's urllib, Java's HttpURLConnection) reads the answer rather than a
// connection reset. Closing a connection with bytes unread makes the kernel reset it, and the
// reset fails the client's write before it ever reads; net/http itself discards at most 256 KiB
// of an unread body, then closes. So on HTTP/1 the answer says Connection: close and is sent
// at once, then the rest of the body is read and thrown away, at most lingerFactor ×
// MaxBodyBytes of it for at most lingerTime, and the connection is closed with nothing
// unread. A body announced larger than that bound, or one whose client waits for
// "100 Continue" (it is never sent now), is not waited for: the connection closes at once.
// HTTP/2 refuses a stream's body
// without harm to the connection, so there the answer is all.
func (a *api) refuseBody(w http.ResponseWriter, r *http.Request, p Problem) {
	if r.ProtoMajor != 1 {
		writeProblem(w, r, p)
		return
	}
	w.Header().Set("Connection", "close")
	writeProblem(w, r, p)
	rc := http.NewResponseController(w)
	// Then no read at all: net/http would otherwise read up to 256 KiB more of the body after
	// the handler, for as long as the server's read timeout allows.
	defer func() { _ = rc.SetReadDeadline(time.Now()) }()
	bound := lingerFactor * a.cfg.MaxBodyBytes
	if r.ContentLength == 0 || r.ContentLength > bound || expectsContinue(r) {
		return
	}
	if rc.Flush() != nil || rc.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	n, err := io.CopyN(io.Discard, r.Body, bound)
	a.log.Debug().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Int64("discarded_bytes", n).
		Msg("refused request body read and discarded before closing")
}

// expectsContinue reports whether the client waits for "100 Continue" before it sends the body.
func expectsContinue(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && strings.EqualFold(strings.TrimSpace(r.Header.Get("Expect")), "100-continue")
}

// outlast lets a route that waits d for a job answer after the server's write timeout allows:
// the write deadline moves to d plus WriteTimeout from now. (The read timeout needs no
// moving: net/http lifts it once the body is read.) Writers that cannot move deadlines have
// none to move.
func (a *api) outlast(w http.ResponseWriter, d time.Duration) {
	if a.cfg.WriteTimeout > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + a.cfg.WriteTimeout))
	}
}

// streamDeadline gives the next write of an event stream WriteTimeout from now, so a stream
// lasts as long as its job while a client that stops reading is still cut off. With no
// WriteTimeout it lifts the deadline.
func (a *api) streamDeadline(rc *http.ResponseController) {
	var d time.Time
	if a.cfg.WriteTimeout > 0 {
		d = time.Now().Add(a.cfg.WriteTimeout)
	}
	_ = rc.SetWriteDeadline(d)
}
