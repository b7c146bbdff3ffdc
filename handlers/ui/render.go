package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
)

// pageNames are the templates that are whole pages, each over layout.html.
var pageNames = []string{"login", "overview", "jobs", "job", "deadletters", "confirm", "replays", "replay", "models"}

// pages holds one parsed template set per page. Immutable.
type pages struct {
	set map[string]*template.Template
}

var funcs = template.FuncMap{
	"lower": func(v any) string { return strings.ToLower(fmt.Sprint(v)) },
	"stamp": stamp,
	"join":  strings.Join,
	"opt": func(p *int64) string {
		if p == nil {
			return "—"
		}
		return strconv.FormatInt(*p, 10)
	},
	"pct": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
	"limit": func(n int) string {
		if n <= 0 {
			return "none"
		}
		return strconv.Itoa(n)
	},
	"max":   func(a, b int) int { return max(a, b) },
	"depth": func(m map[messages.Priority]int64, p string) int64 { return m[messages.Priority(p)] },
}

func parsePages() (*pages, error) {
	p := &pages{set: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: parse template %s: %w", name, err)
		}
		p.set[name] = t
	}
	return p, nil
}

// stamp formats a time for tables: UTC to the second; "—" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// view is what every page template gets.
type view struct {
	Title, Page string
	// Open is true on a console without auth.
	Open   bool
	Authed bool
	CSRF   string
	Flash  string
	Error  string
	Data   any
}

// render writes page name with data, taking (and clearing) the session's flash.
func (c *console) render(w http.ResponseWriter, r *http.Request, name string, sess *session, data any) {
	c.renderStatus(w, r, http.StatusOK, name, sess, data, "")
}

func (c *console) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, sess *session, data any, errMsg string) {
	v := view{Title: titles[name], Page: pageIDs[name], Open: !c.cfg.Auth, Data: data, Error: errMsg}
	if sess != nil {
		v.Authed, v.CSRF, v.Flash = sess.Authed, sess.CSRF, sess.Flash
		if sess.Flash != "" {
			sess.Flash = ""
			c.sessions.save(w, r, sess)
		}
	}
	var buf bytes.Buffer
	if err := c.pages.set[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error().Err(err).Str("template", name).Msg("console page failed")
		http.Error(w, "the console failed to render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

var titles = map[string]string{"login": "Log in", "overview": "Overview", "jobs": "Jobs", "job": "Job",
	"deadletters": "Dead letters", "confirm": "Redrive dead letters", "replays": "Replays", "replay": "Replay",
	"models": "Models"}

var pageIDs = map[string]string{"login": "login", "overview": "overview", "jobs": "jobs", "job": "jobs",
	"deadletters": "dead-letters", "confirm": "dead-letters", "replays": "replays", "replay": "replays",
	"models": "models"}

// flashAndRedirect leaves a message for the next page and sends the browser there (POST,
// redirect, GET).
func (c *console) flashAndRedirect(w http.ResponseWriter, r *http.Request, to, msg string) {
	if sess := sessionFrom(r.Context()); sess != nil {
		sess.Flash = msg
		c.sessions.save(w, r, sess)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func queryEscape(s string) string { return url.QueryEscape(s) }
