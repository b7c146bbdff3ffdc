package ui

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/ops"
)

func (c *console) routes() {
	c.mux.Handle("GET /ui/{$}", c.page(c.overview))
	c.mux.Handle("GET /ui/jobs", c.page(c.jobs))
	c.mux.Handle("GET /ui/jobs/stream", c.page(c.jobsStream))
	c.mux.Handle("GET /ui/jobs/{id}", c.page(c.job))
	c.mux.Handle("POST /ui/jobs/{id}/cancel", c.page(c.cancelJob))
	c.mux.Handle("POST /ui/jobs/{id}/redrive", c.page(c.redriveJob))
	c.mux.Handle("GET /ui/dead-letters", c.page(c.deadLetters))
	c.mux.Handle("GET /ui/dead-letters/confirm", c.page(c.confirmRedrive))
	c.mux.Handle("POST /ui/dead-letters/redrive", c.page(c.redrive))
	c.mux.Handle("GET /ui/replays", c.page(c.replays))
	c.mux.Handle("POST /ui/replays", c.page(c.replayAction))
	c.mux.Handle("GET /ui/replays/{name}", c.page(c.replay))
	c.mux.Handle("GET /ui/models", c.page(c.models))
	c.mux.Handle("GET /ui/api/v1/{path...}", c.page(c.proxy))
	c.mux.Handle("POST /ui/logout", c.page(c.logout))
}

// failPage answers a page whose API call failed with the API's reason.
func (c *console) failPage(w http.ResponseWriter, r *http.Request, name string, ans apiAnswer) {
	status := ans.status
	if status < 400 {
		status = http.StatusBadGateway
	}
	c.renderStatus(w, r, status, name, sessionFrom(r.Context()), nil, "The API answered "+http.StatusText(ans.status)+": "+ans.problem())
}

// proxy passes GET /ui/api/v1/... to the API's GET /v1/..., for the pages' scripts (charts,
// progress): the same JSON a script would get, with the session's credential.
func (c *console) proxy(w http.ResponseWriter, r *http.Request) {
	path := "/v1/" + r.PathValue("path")
	if strings.HasSuffix(path, "/events") {
		// An event stream does not pass through an in-process call; the pages use their own.
		http.Error(w, "event streams are not passed through the console", http.StatusNotFound)
		return
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	ans := c.call(r, http.MethodGet, path, nil)
	if ct := ans.header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	c.sessions.end(w, r, sess)
	c.audit(r, "console_logout", "").Msg("operator action")
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

type overviewData struct {
	Stats     ops.Stats
	StatsJSON string
}

func (c *console) overview(w http.ResponseWriter, r *http.Request) {
	ans := c.call(r, http.MethodGet, "/v1/stats?window=1h", nil)
	var st ops.Stats
	if !ans.ok() || ans.decode(&st) != nil {
		c.failPage(w, r, "overview", ans)
		return
	}
	c.render(w, r, "overview", sessionFrom(r.Context()), overviewData{Stats: st, StatsJSON: string(ans.body)})
}

// jobFilter is the job list's filter form.
type jobFilter struct {
	Status, Task, Tenant, Priority string
	// From and To are datetime-local values, read as UTC.
	From, To string
}

const datetimeLocal = "2006-01-02T15:04"

// query returns f as GET /v1/jobs parameters.
func (f jobFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "task": f.Task, "tenant": f.Tenant, "priority": f.Priority} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]string{"created_after": f.From, "created_before": f.To} {
		if t, err := parseLocal(v); err == nil {
			q.Set(k, t.Format(time.RFC3339))
		}
	}
	return q
}

// form returns f as the console's own query string.
func (f jobFilter) form() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "task": f.Task, "tenant": f.Tenant, "priority": f.Priority, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func parseLocal(s string) (time.Time, error) {
	if t, err := time.Parse(datetimeLocal, s); err == nil {
		return t, nil
	}
	return time.Parse(datetimeLocal+":05", s)
}

func filterOf(r *http.Request) jobFilter {
	q := r.URL.Query()
	return jobFilter{Status: q.Get("status"), Task: strings.TrimSpace(q.Get("task")), Tenant: strings.TrimSpace(q.Get("tenant")),
		Priority: q.Get("priority"), From: q.Get("from"), To: q.Get("to")}
}

type jobsData struct {
	Filter     jobFilter
	Find       string
	Jobs       []messages.JobRecord
	Live       bool
	StreamURL  string
	NextPage   string
	FirstPage  string
	Statuses   []messages.Status
	Priorities []messages.Priority
}

var (
	allStatuses = []messages.Status{messages.StatusQueued, messages.StatusProcessing, messages.StatusCompleted,
		messages.StatusFailed, messages.StatusCancelled}
	allPriorities = []messages.Priority{messages.PriorityHigh, messages.PriorityNormal, messages.PriorityLow}
)

// jobPageSize is the number of jobs a page of the console lists.
const jobPageSize = 50

type jobList struct {
	Jobs       []messages.JobRecord `json:"jobs"`
	NextCursor string               `json:"next_cursor"`
}

func (c *console) jobs(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r)
	find := strings.TrimSpace(r.URL.Query().Get("q"))
	if find != "" {
		c.find(w, r, f, find)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	q := f.query()
	q.Set("limit", strconv.Itoa(jobPageSize))
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	ans := c.call(r, http.MethodGet, "/v1/jobs?"+q.Encode(), nil)
	var list jobList
	if !ans.ok() || ans.decode(&list) != nil {
		c.failPage(w, r, "jobs", ans)
		return
	}
	d := jobsData{Filter: f, Jobs: list.Jobs, Live: cursor == "", Statuses: allStatuses, Priorities: allPriorities}
	form := f.form()
	d.FirstPage = "/ui/jobs?" + form.Encode()
	d.StreamURL = "/ui/jobs/stream?" + form.Encode()
	if list.NextCursor != "" {
		next := f.form()
		next.Set("cursor", list.NextCursor)
		d.NextPage = "/ui/jobs?" + next.Encode()
	}
	c.render(w, r, "jobs", sessionFrom(r.Context()), d)
}

// find opens the job with that id, else the one holding that idempotency key (for the
// filter's tenant), else says neither exists.
func (c *console) find(w http.ResponseWriter, r *http.Request, f jobFilter, s string) {
	if ans := c.call(r, http.MethodGet, "/v1/jobs/"+url.PathEscape(s), nil); ans.ok() {
		http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(s), http.StatusSeeOther)
		return
	}
	q := url.Values{"idempotency_key": {s}}
	if f.Tenant != "" {
		q.Set("tenant", f.Tenant)
	}
	ans := c.call(r, http.MethodGet, "/v1/jobs?"+q.Encode(), nil)
	var list jobList
	if ans.ok() && ans.decode(&list) == nil && len(list.Jobs) == 1 {
		http.Redirect(w, r, "/ui/jobs/"+url.PathEscape(list.Jobs[0].JobID), http.StatusSeeOther)
		return
	}
	d := jobsData{Filter: f, Find: s, Jobs: []messages.JobRecord{}, Statuses: allStatuses, Priorities: allPriorities,
		FirstPage: "/ui/jobs?" + f.form().Encode()}
	msg := "No job has the id " + s + ", and none holds it as an idempotency key"
	if f.Tenant == "" {
		msg += " without a tenant (give the tenant to find a tenant's key)"
	} else {
		msg += " for tenant " + f.Tenant
	}
	c.renderStatus(w, r, http.StatusNotFound, "jobs", sessionFrom(r.Context()), d, msg+".")
}

// timelineEntry is one line of a job's timeline.
type timelineEntry struct {
	At     time.Time
	Kind   string
	What   string
	Detail string
}

type jobData struct {
	Job          messages.JobRecord
	Timeline     []timelineEntry
	CanCancel    bool
	DeadLetter   bool
	Request      bool
	Masked       bool
	Input        string
	RequestError string
	Curl         string
	Result       string
	ResultNote   string
}

func (c *console) job(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ans := c.call(r, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil)
	var rec messages.JobRecord
	if !ans.ok() || ans.decode(&rec) != nil {
		c.failPage(w, r, "job", ans)
		return
	}
	d := jobData{Job: rec, Timeline: timelineOf(rec), CanCancel: !rec.Status.Terminal()}

	if req := c.call(r, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/request", nil); req.ok() {
		var body struct {
			Masked  bool         `json:"masked"`
			Request messages.Job `json:"request"`
		}
		if req.decode(&body) == nil {
			d.Request, d.Masked = true, body.Masked
			in, _ := json.MarshalIndent(struct {
				Input   messages.Input   `json:"input"`
				Context string           `json:"context,omitempty"`
				Params  *messages.Params `json:"params,omitempty"`
				Meta    json.RawMessage  `json:"metadata,omitempty"`
			}{body.Request.Input, body.Request.Context, body.Request.Params, body.Request.Metadata}, "", "  ")
			d.Input = string(in)
			d.Curl = curlOf(body.Request)
		}
	} else {
		d.RequestError = "The accepted request is not available: " + req.problem()
	}

	switch rec.Status {
	case messages.StatusCompleted:
		if res := c.call(r, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/result", nil); res.ok() {
			var out messages.Result
			if res.decode(&out) == nil {
				d.Result = out.Output.Text
			}
		} else if res.status == http.StatusTemporaryRedirect {
			d.ResultNote = "The result is in the result store: " + res.header.Get("Location")
		} else {
			d.ResultNote = "The result cannot be read: " + res.problem()
		}
	case messages.StatusFailed:
		d.ResultNote = "No result: the job failed."
		if dl := c.call(r, http.MethodGet, "/v1/dead-letters/"+url.PathEscape(id), nil); dl.ok() {
			d.DeadLetter = true
		}
	default:
		d.ResultNote = "No result yet."
	}
	c.render(w, r, "job", sessionFrom(r.Context()), d)
}

// timelineOf lists what the record tells of the job's life: accepted, each failed attempt,
// the fallbacks, and how it ended (or where it is).
func timelineOf(rec messages.JobRecord) []timelineEntry {
	out := []timelineEntry{{At: rec.CreatedAt, Kind: "accepted", What: "accepted", Detail: "priority " + string(rec.Priority)}}
	if rec.Error != nil {
		for _, h := range rec.Error.History {
			detail := h.Code + ": " + h.Message
			if h.Model != "" {
				detail = "model " + h.Model + ", " + detail
			}
			out = append(out, timelineEntry{At: h.At, Kind: "attempt", What: "attempt " + itoa(h.Attempt) + " failed", Detail: detail})
		}
	}
	if len(rec.Fallbacks) > 0 {
		out = append(out, timelineEntry{At: rec.UpdatedAt, Kind: "fallback", What: "fell back",
			Detail: "tried " + strings.Join(rec.Fallbacks, ", ") + " before " + rec.Model})
	}
	end := timelineEntry{At: rec.UpdatedAt, Kind: strings.ToLower(string(rec.Status)), What: strings.ToLower(string(rec.Status))}
	switch rec.Status {
	case messages.StatusCompleted:
		end.Detail = "by " + rec.Model + " in " + rec.UpdatedAt.Sub(rec.CreatedAt).Round(time.Millisecond).String() + " end to end"
		if b := rec.BatchInference; b != nil && b.State == messages.BatchAnswered {
			end.Detail += ", from its record in batch job " + b.JobARN
		} else if b != nil && b.State == messages.BatchOnDemand {
			end.Detail += ", on demand after batch job " + cmp.Or(b.JobARN, b.BatchID) + " (" + cmp.Or(b.Status, "unknown") + ") did not answer it"
		}
	case messages.StatusFailed:
		if rec.Error != nil {
			end.Detail = rec.Error.Code + ": " + rec.Error.Message
		}
	case messages.StatusProcessing:
		end.What = "running"
		end.Detail = "attempt " + itoa(rec.Attempts)
		if b := rec.BatchInference; b != nil && b.State == messages.BatchRunning {
			end.What = "waiting in batch inference"
			end.Detail = "batch job " + cmp.Or(b.JobARN, "not created yet") + ", provider status " + cmp.Or(b.Status, "unknown")
		}
	case messages.StatusQueued:
		end.What = "waiting in the queue"
	}
	slices.SortStableFunc(out, func(a, b timelineEntry) int { return a.At.Compare(b.At) })
	return append(out, end)
}

func itoa(n int) string { return strconv.Itoa(n) }

// curlOf is the curl command that submits job again, through $INFLEET_SERVER with
// $INFLEET_API_KEY (the CLI's variables).
func curlOf(job messages.Job) string {
	job.JobID, job.ReplayName = "", ""
	body, _ := json.Marshal(job)
	return "curl -sS -X POST \"${INFLEET_SERVER:-http://127.0.0.1:8080}/v1/jobs\" \\\n" +
		"  -H 'Content-Type: application/json' -H \"x-api-key: $INFLEET_API_KEY\" \\\n" +
		"  -d '" + strings.ReplaceAll(string(body), "'", `'\''`) + "'"
}

func (c *console) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ans := c.call(r, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil)
	msg := "Job cancelled."
	if !ans.ok() {
		msg = "Not cancelled: " + ans.problem()
	}
	c.flashAndRedirect(w, r, "/ui/jobs/"+url.PathEscape(id), msg)
}

func (c *console) redriveJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ans := c.call(r, http.MethodPost, "/v1/dead-letters:redrive", map[string]any{"job_ids": []string{id}})
	var res ops.RedriveResult
	msg := "Redriven: the job is queued again."
	switch {
	case !ans.ok() || ans.decode(&res) != nil:
		msg = "Not redriven: " + ans.problem()
	case res.Redriven == 0:
		msg = "Nothing to redrive: the dead letter is gone, or its job is live again."
	}
	c.flashAndRedirect(w, r, "/ui/jobs/"+url.PathEscape(id), msg)
}

// deadLetterGroup is the dead letters of one reason and task.
type deadLetterGroup struct {
	Code, Task     string
	Count          int
	Oldest, Newest time.Time
}

type deadLettersData struct {
	Total   int
	Groups  []deadLetterGroup
	Letters []ops.DeadLetter
}

// maxListedDeadLetters is how many dead letters the page lists one by one.
const maxListedDeadLetters = 100

func (c *console) deadLetters(w http.ResponseWriter, r *http.Request) {
	ans := c.call(r, http.MethodGet, "/v1/dead-letters?limit=10000", nil)
	var list struct {
		DeadLetters []ops.DeadLetter `json:"dead_letters"`
	}
	if !ans.ok() || ans.decode(&list) != nil {
		c.failPage(w, r, "deadletters", ans)
		return
	}
	groups := map[[2]string]*deadLetterGroup{}
	for _, dl := range list.DeadLetters {
		k := [2]string{dl.Code, dl.Task}
		g := groups[k]
		if g == nil {
			g = &deadLetterGroup{Code: dl.Code, Task: dl.Task, Oldest: dl.DeadAt, Newest: dl.DeadAt}
			groups[k] = g
		}
		g.Count++
		if dl.DeadAt.Before(g.Oldest) {
			g.Oldest = dl.DeadAt
		}
		if dl.DeadAt.After(g.Newest) {
			g.Newest = dl.DeadAt
		}
	}
	d := deadLettersData{Total: len(list.DeadLetters)}
	for _, g := range groups {
		d.Groups = append(d.Groups, *g)
	}
	slices.SortFunc(d.Groups, func(a, b deadLetterGroup) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Code+"\x00"+a.Task, b.Code+"\x00"+b.Task)
	})
	// Newest first, the most recent few.
	letters := list.DeadLetters
	slices.Reverse(letters)
	d.Letters = letters[:min(len(letters), maxListedDeadLetters)]
	c.render(w, r, "deadletters", sessionFrom(r.Context()), d)
}

type confirmData struct {
	Reason, Task string
	Count        int
}

// confirmRedrive counts what a redrive of one group would send back, and asks.
func (c *console) confirmRedrive(w http.ResponseWriter, r *http.Request) {
	reason, task := r.URL.Query().Get("reason"), r.URL.Query().Get("task")
	q := url.Values{"limit": {"10000"}}
	if reason != "" {
		q.Set("reason", reason)
	}
	if task != "" {
		q.Set("task", task)
	}
	ans := c.call(r, http.MethodGet, "/v1/dead-letters?"+q.Encode(), nil)
	var list struct {
		Count int `json:"count"`
	}
	if !ans.ok() || ans.decode(&list) != nil {
		c.failPage(w, r, "confirm", ans)
		return
	}
	c.render(w, r, "confirm", sessionFrom(r.Context()), confirmData{Reason: reason, Task: task, Count: list.Count})
}

func (c *console) redrive(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{}
	reason, task := r.PostFormValue("reason"), r.PostFormValue("task")
	if reason != "" {
		body["reason"] = reason
	}
	if task != "" {
		body["task"] = task
	}
	if len(body) == 0 {
		body["all"] = true
	}
	ans := c.call(r, http.MethodPost, "/v1/dead-letters:redrive", body)
	var res ops.RedriveResult
	if !ans.ok() || ans.decode(&res) != nil {
		c.flashAndRedirect(w, r, "/ui/dead-letters", "Not redriven: "+ans.problem())
		return
	}
	msg := "Redriven " + itoa(res.Redriven) + " of " + itoa(res.Matched) + " dead letter(s)"
	if res.Skipped > 0 {
		msg += "; " + itoa(res.Skipped) + " removed whose jobs were live again"
	}
	if res.Kept > 0 {
		msg += "; " + itoa(res.Kept) + " kept that never became jobs"
	}
	c.flashAndRedirect(w, r, "/ui/dead-letters", msg+".")
}

// replayForm is the replay form as typed.
type replayForm struct {
	Since, From, To, Task, Status, JobIDs, Rate, Priority, Name string
}

func replayFormOf(r *http.Request) replayForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return replayForm{Since: v("since"), From: v("from"), To: v("to"), Task: v("task"), Status: v("status"),
		JobIDs: v("job_ids"), Rate: v("rate"), Priority: v("priority"), Name: v("name")}
}

// body returns the form as a POST /v1/replays body.
func (f replayForm) body(dryRun bool) map[string]any {
	b := map[string]any{"dry_run": dryRun}
	for k, v := range map[string]string{"since": f.Since, "from": f.From, "to": f.To, "task": f.Task,
		"status": f.Status, "priority": f.Priority, "name": f.Name} {
		if v != "" {
			b[k] = v
		}
	}
	if ids := strings.FieldsFunc(f.JobIDs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }); len(ids) > 0 {
		b["job_ids"] = ids
	}
	if f.Rate != "" {
		b["rate"] = json.Number(f.Rate)
	}
	return b
}

type replaysData struct {
	Form       replayForm
	DryRun     *ops.ReplayStatus
	Statuses   []messages.Status
	Priorities []messages.Priority
	// Recent are the fleet's latest replays, from the job store; Running says whether any is
	// unfinished (the list then refreshes itself).
	Recent  []ops.ReplayStatus
	Running bool
	// RecentError says why the list could not be read ("" when it was).
	RecentError string
}

// recentReplays is how many replays the Replays page lists.
const recentReplays = 20

// withRecent adds the fleet's latest replays to d.
func (c *console) withRecent(r *http.Request, d replaysData) replaysData {
	ans := c.call(r, http.MethodGet, "/v1/replays?limit="+strconv.Itoa(recentReplays), nil)
	var list struct {
		Replays []ops.ReplayStatus `json:"replays"`
	}
	if !ans.ok() || ans.decode(&list) != nil {
		d.RecentError = ans.problem()
		return d
	}
	d.Recent = list.Replays
	for _, st := range list.Replays {
		d.Running = d.Running || !st.Done
	}
	return d
}

func (c *console) replays(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "replays", sessionFrom(r.Context()), c.withRecent(r, replaysData{Form: replayForm{Since: "1h"},
		Statuses: allStatuses, Priorities: allPriorities}))
}

// replayAction is the replay form's two buttons: a dry run shows the count and offers the
// start; the start begins the replay and follows it.
func (c *console) replayAction(w http.ResponseWriter, r *http.Request) {
	f := replayFormOf(r)
	d := replaysData{Form: f, Statuses: allStatuses, Priorities: allPriorities}
	start := r.PostFormValue("action") == "start"
	if f.Rate != "" && !json.Valid([]byte(f.Rate)) {
		c.renderStatus(w, r, http.StatusBadRequest, "replays", sessionFrom(r.Context()), d, "The rate must be a number of jobs per second.")
		return
	}
	ans := c.call(r, http.MethodPost, "/v1/replays", f.body(!start))
	var st ops.ReplayStatus
	if !ans.ok() || ans.decode(&st) != nil {
		c.renderStatus(w, r, max(ans.status, http.StatusBadRequest), "replays", sessionFrom(r.Context()), d, "The replay was refused: "+ans.problem())
		return
	}
	if start {
		c.flashAndRedirect(w, r, "/ui/replays/"+url.PathEscape(st.Name), "Replay started.")
		return
	}
	d.DryRun = &st
	c.render(w, r, "replays", sessionFrom(r.Context()), c.withRecent(r, d))
}

type replayData struct {
	Name   string
	Status ops.ReplayStatus
}

func (c *console) replay(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ans := c.call(r, http.MethodGet, "/v1/replays/"+url.PathEscape(name), nil)
	var st ops.ReplayStatus
	if !ans.ok() || ans.decode(&st) != nil {
		c.failPage(w, r, "replay", ans)
		return
	}
	c.render(w, r, "replay", sessionFrom(r.Context()), replayData{Name: name, Status: st})
}

type modelsData struct {
	Live   bool
	Scope  string
	Models []models.Report
}

func (c *console) models(w http.ResponseWriter, r *http.Request) {
	ans := c.call(r, http.MethodGet, "/v1/models", nil)
	var d modelsData
	if !ans.ok() || ans.decode(&d) != nil {
		c.failPage(w, r, "models", ans)
		return
	}
	c.render(w, r, "models", sessionFrom(r.Context()), d)
}
