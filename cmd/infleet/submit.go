package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
)

func runSubmit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("submit", "--task TASK (--text TEXT | --file FILE | --json FILE) [flags]",
		"Submits one job and prints the API's answer (the job id and status URL). With --stream,\n"+
			"prints the answer instead, as the model generates it.", stderr)
	server := addServerFlag(fs)
	task := fs.String("task", "", "task name, e.g. summarize (required unless --json)")
	text := fs.String("text", "", "input text")
	file := fs.String("file", "", "read the input text from FILE (- for standard input)")
	raw := fs.String("json", "", "send FILE (- for standard input) as the whole job body")
	model := fs.String("model", "", "model name (default: the task's route)")
	priority := fs.String("priority", "", "high, normal or low (default normal)")
	callback := fs.String("callback-url", "", "webhook URL for the job's lifecycle events")
	idem := fs.String("idempotency-key", "", "makes retries of this submit return the same job")
	wait := fs.Duration("wait", 0, "wait up to this long (at most 60s) for the job to finish")
	stream := fs.Bool("stream", false, "submit the job with \"stream\": true and print its answer's text as it arrives (the job id goes to standard error); exits 1 unless the streamed text is the job's result")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if *stream && *wait > 0 {
		return usageError(stderr, "submit", "--stream and --wait do not go together: --stream already follows the job to its end")
	}
	var body []byte
	switch {
	case *raw != "":
		data, err := readFileOrStdin(*raw)
		if err != nil {
			return usageError(stderr, "submit", "read --json: %v", err)
		}
		body = data
	default:
		if *task == "" {
			return usageError(stderr, "submit", "--task is required (or give the whole body with --json)")
		}
		input := *text
		if *file != "" {
			data, err := readFileOrStdin(*file)
			if err != nil {
				return usageError(stderr, "submit", "read --file: %v", err)
			}
			input = string(data)
		}
		if input == "" {
			return usageError(stderr, "submit", "give the input with --text or --file")
		}
		job := messages.Job{Task: *task, Input: messages.Input{Text: input}, Model: *model,
			Priority: messages.Priority(*priority), CallbackURL: *callback}
		body, _ = json.Marshal(job)
	}
	if *stream {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
			return usageError(stderr, "submit", "--json must hold a JSON object to add \"stream\": true to")
		}
		doc["stream"] = true
		body, _ = json.Marshal(doc)
	}
	header := http.Header{}
	if *idem != "" {
		header.Set("Idempotency-Key", *idem)
	}
	if *wait > 0 {
		header.Set("Prefer", fmt.Sprintf("wait=%d", int(wait.Seconds())))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait+30*time.Second)
	defer cancel()
	c := newAPIClient(*server)
	status, resp, err := c.do(ctx, http.MethodPost, "/v1/jobs", body, header)
	if err != nil {
		fmt.Fprintln(stderr, "infleet submit:", err)
		return 1
	}
	if !*stream || status != http.StatusAccepted && status != http.StatusOK {
		return reportHTTP(stdout, stderr, status, resp)
	}
	var rec messages.JobRecord
	if err := json.Unmarshal(resp, &rec); err != nil || rec.JobID == "" {
		fmt.Fprintln(stderr, "infleet submit: the API's answer names no job:", string(resp))
		return 1
	}
	fmt.Fprintf(stderr, "job %s accepted\n", rec.JobID)
	return streamAnswer(context.Background(), c, rec.JobID, stdout, stderr)
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[flags] JOB_ID", "Prints a job's record, its result (--result) or its live status events (--watch).", stderr)
	server := addServerFlag(fs)
	result := fs.Bool("result", false, "print the job's result instead of its record")
	watch := fs.Bool("watch", false, "follow the job's status changes until it ends")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "status", "give exactly one job id")
	}
	id := fs.Arg(0)
	if strings.ContainsAny(id, "/?#") {
		return usageError(stderr, "status", "%q is not a job id", id)
	}
	c := newAPIClient(*server)
	path := messages.JobPath(id)
	if *result {
		path = messages.ResultPath(id)
	}
	if *watch {
		return watchJob(c, id, stdout, stderr)
	}
	status, body, err := c.do(context.Background(), http.MethodGet, path, nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "infleet status:", err)
		return 1
	}
	return reportHTTP(stdout, stderr, status, body)
}

// watchJob prints each status event of the job's SSE stream as one JSON line.
func watchJob(c *apiClient, id string, stdout, stderr io.Writer) int {
	req, err := http.NewRequest(http.MethodGet, c.server+messages.JobPath(id)+"/events", nil)
	if err != nil {
		return usageError(stderr, "status", "bad --server: %v", err)
	}
	if c.key != "" {
		req.Header.Set("X-Api-Key", c.key)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "infleet status: cannot reach the infleet API:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return reportHTTP(stdout, stderr, resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			fmt.Fprintln(stdout, strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(stderr, "infleet status: event stream broke:", err)
		return 1
	}
	return 0
}

func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}
