package fmsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Model invocation job statuses, as Amazon Bedrock names them.
const (
	JobSubmitted          = "Submitted"
	JobInProgress         = "InProgress"
	JobCompleted          = "Completed"
	JobPartiallyCompleted = "PartiallyCompleted"
	JobFailed             = "Failed"
	JobStopping           = "Stopping"
	JobStopped            = "Stopped"
	JobExpired            = "Expired"
)

// invocationRegion and invocationAccount make the job ARNs fmsim hands out.
const (
	invocationRegion  = "us-east-1"
	invocationAccount = "000000000000"
)

// Invocations shapes fmsim's Bedrock batch inference control plane (model invocation jobs).
// The zero value has no object store: every job fails for want of its input.
type Invocations struct {
	// S3 reads each job's input JSONL and writes its output; nil fails every job.
	S3 *s3.Client
	// Delay is how long a job stays InProgress before its output is written. Default 0.
	Delay time.Duration
	// FailRecordsMatching, when set, answers every record whose input contains it with an
	// error record instead of a modelOutput.
	FailRecordsMatching string
	// FailJobsMatching, when set, ends Failed (without output) every job holding a record
	// whose input contains it.
	FailJobsMatching string
	// ExpireJobsMatching, when set, ends Expired (without output) every job holding a record
	// whose input contains it.
	ExpireJobsMatching string
}

// invocationJob is one model invocation job as GetModelInvocationJob answers it.
type invocationJob struct {
	JobArn                 string          `json:"jobArn"`
	JobName                string          `json:"jobName"`
	ModelID                string          `json:"modelId"`
	ClientRequestToken     string          `json:"clientRequestToken,omitempty"`
	RoleArn                string          `json:"roleArn"`
	Status                 string          `json:"status"`
	Message                string          `json:"message,omitempty"`
	SubmitTime             string          `json:"submitTime"`
	LastModifiedTime       string          `json:"lastModifiedTime"`
	EndTime                string          `json:"endTime,omitempty"`
	InputDataConfig        json.RawMessage `json:"inputDataConfig"`
	OutputDataConfig       json.RawMessage `json:"outputDataConfig"`
	TimeoutDurationInHours int             `json:"timeoutDurationInHours,omitempty"`
	TotalRecordCount       int64           `json:"totalRecordCount,omitempty"`
	ProcessedRecordCount   int64           `json:"processedRecordCount,omitempty"`
	SuccessRecordCount     int64           `json:"successRecordCount,omitempty"`
	ErrorRecordCount       int64           `json:"errorRecordCount,omitempty"`

	inputURI, outputURI string
	stop                chan struct{}
}

// invocationStore holds the jobs of one Server.
type invocationStore struct {
	mu      sync.Mutex
	cfg     Invocations
	jobs    map[string]*invocationJob // by ARN
	order   []string                  // ARNs, oldest first
	byToken map[string]string         // client request token -> ARN
	seq     int
}

func (s *Server) routeInvocations() {
	s.inv = &invocationStore{jobs: map[string]*invocationJob{}, byToken: map[string]string{}}
	s.mux.HandleFunc("POST /model-invocation-job", s.createInvocationJob)
	s.mux.HandleFunc("GET /model-invocation-job/{jobIdentifier}", s.getInvocationJob)
	s.mux.HandleFunc("GET /model-invocation-jobs", s.listInvocationJobs)
	s.mux.HandleFunc("POST /model-invocation-job/{jobIdentifier}/stop", s.stopInvocationJob)
}

// SetInvocations replaces how model invocation jobs are run; jobs already created keep
// running under the settings they started with.
func (s *Server) SetInvocations(cfg Invocations) {
	s.inv.mu.Lock()
	defer s.inv.mu.Unlock()
	s.inv.cfg = cfg
}

type createJobRequest struct {
	ClientRequestToken string `json:"clientRequestToken"`
	JobName            string `json:"jobName"`
	ModelID            string `json:"modelId"`
	RoleArn            string `json:"roleArn"`
	InputDataConfig    struct {
		S3InputDataConfig *struct {
			S3URI string `json:"s3Uri"`
		} `json:"s3InputDataConfig"`
	} `json:"inputDataConfig"`
	OutputDataConfig struct {
		S3OutputDataConfig *struct {
			S3URI string `json:"s3Uri"`
		} `json:"s3OutputDataConfig"`
	} `json:"outputDataConfig"`
	TimeoutDurationInHours int `json:"timeoutDurationInHours"`
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (s *Server) createInvocationJob(w http.ResponseWriter, r *http.Request) {
	var req createJobRequest
	raw, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	if req.JobName == "" {
		problems = append(problems, "jobName: required")
	}
	if req.ModelID == "" {
		problems = append(problems, "modelId: required")
	}
	if req.RoleArn == "" {
		problems = append(problems, "roleArn: required")
	}
	if req.InputDataConfig.S3InputDataConfig == nil || !strings.HasPrefix(req.InputDataConfig.S3InputDataConfig.S3URI, "s3://") {
		problems = append(problems, "inputDataConfig.s3InputDataConfig.s3Uri: required, an s3:// URI")
	}
	if req.OutputDataConfig.S3OutputDataConfig == nil || !strings.HasPrefix(req.OutputDataConfig.S3OutputDataConfig.S3URI, "s3://") {
		problems = append(problems, "outputDataConfig.s3OutputDataConfig.s3Uri: required, an s3:// URI")
	}
	if len(problems) > 0 {
		bedrockError(w, http.StatusBadRequest, "ValidationException", strings.Join(problems, "; "))
		return
	}
	if s.known != nil && !s.known[req.ModelID] {
		bedrockError(w, http.StatusNotFound, "ResourceNotFoundException", "The provided model identifier is invalid.")
		return
	}
	var in struct {
		InputDataConfig  json.RawMessage `json:"inputDataConfig"`
		OutputDataConfig json.RawMessage `json:"outputDataConfig"`
	}
	_ = json.Unmarshal(raw, &in)

	st := s.inv
	st.mu.Lock()
	if req.ClientRequestToken != "" {
		if arn, ok := st.byToken[req.ClientRequestToken]; ok {
			st.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]string{"jobArn": arn})
			return
		}
	}
	for _, j := range st.jobs {
		if j.JobName == req.JobName {
			st.mu.Unlock()
			bedrockError(w, http.StatusConflict, "ConflictException", "A job named "+req.JobName+" already exists.")
			return
		}
	}
	st.seq++
	id := fmt.Sprintf("fmsim%07d", st.seq)
	now := timestamp(time.Now())
	j := &invocationJob{
		JobArn:  fmt.Sprintf("arn:aws:bedrock:%s:%s:model-invocation-job/%s", invocationRegion, invocationAccount, id),
		JobName: req.JobName, ModelID: req.ModelID, ClientRequestToken: req.ClientRequestToken, RoleArn: req.RoleArn,
		Status: JobSubmitted, SubmitTime: now, LastModifiedTime: now,
		InputDataConfig: in.InputDataConfig, OutputDataConfig: in.OutputDataConfig,
		TimeoutDurationInHours: cmpInt(req.TimeoutDurationInHours, 24),
		inputURI:               req.InputDataConfig.S3InputDataConfig.S3URI,
		outputURI:              req.OutputDataConfig.S3OutputDataConfig.S3URI,
		stop:                   make(chan struct{}),
	}
	st.jobs[j.JobArn] = j
	st.order = append(st.order, j.JobArn)
	if req.ClientRequestToken != "" {
		st.byToken[req.ClientRequestToken] = j.JobArn
	}
	cfg := st.cfg
	st.mu.Unlock()
	go s.runInvocationJob(j, cfg)
	writeJSON(w, http.StatusOK, map[string]string{"jobArn": j.JobArn})
}

func cmpInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// findJob returns the job an identifier (its ARN, or the id at the ARN's end) names.
func (st *invocationStore) findJob(ident string) *invocationJob {
	if j, ok := st.jobs[ident]; ok {
		return j
	}
	for _, j := range st.jobs {
		if path.Base(j.JobArn) == ident {
			return j
		}
	}
	return nil
}

func (s *Server) getInvocationJob(w http.ResponseWriter, r *http.Request) {
	st := s.inv
	st.mu.Lock()
	j := st.findJob(r.PathValue("jobIdentifier"))
	var out invocationJob
	if j != nil {
		out = *j
	}
	st.mu.Unlock()
	if j == nil {
		bedrockError(w, http.StatusNotFound, "ResourceNotFoundException", "The specified job was not found.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listInvocationJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, name := q.Get("statusEquals"), q.Get("nameContains")
	limit := 1000
	if v, err := strconv.Atoi(q.Get("maxResults")); err == nil && v > 0 {
		limit = v
	}
	start := 0
	if v, err := strconv.Atoi(q.Get("nextToken")); err == nil && v > 0 {
		start = v
	}
	st := s.inv
	st.mu.Lock()
	var page []invocationJob
	next := ""
	order := slices.Clone(st.order)
	if q.Get("sortOrder") != "Ascending" {
		slices.Reverse(order)
	}
	for i := start; i < len(order); i++ {
		j := st.jobs[order[i]]
		if (status != "" && j.Status != status) || (name != "" && !strings.Contains(j.JobName, name)) {
			continue
		}
		if len(page) == limit {
			next = strconv.Itoa(i)
			break
		}
		page = append(page, *j)
	}
	st.mu.Unlock()
	body := map[string]any{"invocationJobSummaries": page}
	if page == nil {
		body["invocationJobSummaries"] = []invocationJob{}
	}
	if next != "" {
		body["nextToken"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) stopInvocationJob(w http.ResponseWriter, r *http.Request) {
	st := s.inv
	st.mu.Lock()
	j := st.findJob(r.PathValue("jobIdentifier"))
	if j == nil {
		st.mu.Unlock()
		bedrockError(w, http.StatusNotFound, "ResourceNotFoundException", "The specified job was not found.")
		return
	}
	switch j.Status {
	case JobSubmitted, JobInProgress:
		j.Status, j.LastModifiedTime = JobStopping, timestamp(time.Now())
		close(j.stop)
	default:
		st.mu.Unlock()
		bedrockError(w, http.StatusBadRequest, "ValidationException", "The job is "+j.Status+" and cannot be stopped.")
		return
	}
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{})
}

// setStatus moves j to status (with message) unless it is being stopped, and reports whether
// it did.
func (st *invocationStore) setStatus(j *invocationJob, status, message string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if j.Status == JobStopping || j.Status == JobStopped {
		return false
	}
	now := timestamp(time.Now())
	j.Status, j.Message, j.LastModifiedTime = status, message, now
	switch status {
	case JobCompleted, JobPartiallyCompleted, JobFailed, JobExpired:
		j.EndTime = now
	}
	return true
}

// runInvocationJob takes j from Submitted to its end: InProgress for cfg.Delay, then its
// records answered into the output, or Failed, Expired or Stopped.
func (s *Server) runInvocationJob(j *invocationJob, cfg Invocations) {
	st := s.inv
	stopped := func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		now := timestamp(time.Now())
		j.Status, j.LastModifiedTime, j.EndTime = JobStopped, now, now
	}
	if !st.setStatus(j, JobInProgress, "") {
		stopped()
		return
	}
	t := time.NewTimer(cfg.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-j.stop:
		stopped()
		return
	case <-s.done:
		st.setStatus(j, JobFailed, "fmsim shut down")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status, msg, counts := s.answerInvocationJob(ctx, j, cfg)
	st.mu.Lock()
	j.TotalRecordCount, j.ProcessedRecordCount = counts[0], counts[0]
	j.SuccessRecordCount, j.ErrorRecordCount = counts[1], counts[2]
	st.mu.Unlock()
	if !st.setStatus(j, status, msg) {
		stopped()
	}
}

// batchRecord is one line of a job's input, and of its output with modelOutput or error.
type batchRecord struct {
	RecordID    string          `json:"recordId"`
	ModelInput  json.RawMessage `json:"modelInput"`
	ModelOutput json.RawMessage `json:"modelOutput,omitempty"`
	Error       *recordError    `json:"error,omitempty"`
}

type recordError struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// answerInvocationJob reads j's input, answers each record as InvokeModel (or Converse, by the
// shape of its modelInput) would, and writes the output where Bedrock does:
// {output s3Uri}/{job id}/{input file name}.out, beside manifest.json.out. It returns the
// job's final status, its message and the records total, succeeded and failed.
func (s *Server) answerInvocationJob(ctx context.Context, j *invocationJob, cfg Invocations) (string, string, [3]int64) {
	var counts [3]int64
	if cfg.S3 == nil {
		return JobFailed, "fmsim has no S3 endpoint to read the input from (start it with --s3-endpoint)", counts
	}
	inBucket, inKey, _ := strings.Cut(strings.TrimPrefix(j.inputURI, "s3://"), "/")
	obj, err := cfg.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(inBucket), Key: aws.String(inKey)})
	if err != nil {
		return JobFailed, fmt.Sprintf("read input %s: %v", j.inputURI, err), counts
	}
	var recs []batchRecord
	sc := bufio.NewScanner(obj.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxBody)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec batchRecord
		if err := json.Unmarshal(line, &rec); err != nil || rec.RecordID == "" || len(rec.ModelInput) == 0 {
			_ = obj.Body.Close()
			return JobFailed, fmt.Sprintf("input %s line %d is not a {recordId, modelInput} record", j.inputURI, len(recs)+1), counts
		}
		recs = append(recs, rec)
	}
	_ = obj.Body.Close()
	if err := sc.Err(); err != nil {
		return JobFailed, fmt.Sprintf("read input %s: %v", j.inputURI, err), counts
	}
	for _, rec := range recs {
		switch {
		case cfg.FailJobsMatching != "" && bytes.Contains(rec.ModelInput, []byte(cfg.FailJobsMatching)):
			return JobFailed, "fmsim: a record matched --batch-fail-jobs-matching", counts
		case cfg.ExpireJobsMatching != "" && bytes.Contains(rec.ModelInput, []byte(cfg.ExpireJobsMatching)):
			return JobExpired, "fmsim: a record matched --batch-expire-jobs-matching", counts
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for _, rec := range recs {
		counts[0]++
		if cfg.FailRecordsMatching != "" && bytes.Contains(rec.ModelInput, []byte(cfg.FailRecordsMatching)) {
			rec.Error = &recordError{ErrorCode: http.StatusBadRequest, ErrorMessage: "fmsim: the record matched --batch-fail-records-matching"}
		} else if body, err := s.answerRecord(j.ModelID, rec.ModelInput); err != nil {
			rec.Error = &recordError{ErrorCode: http.StatusBadRequest, ErrorMessage: "Malformed input request: " + err.Error()}
		} else {
			rec.ModelOutput = body
		}
		if rec.Error != nil {
			counts[2]++
		} else {
			counts[1]++
		}
		_ = enc.Encode(rec)
	}
	outBucket, outPrefix, _ := strings.Cut(strings.TrimPrefix(j.outputURI, "s3://"), "/")
	dir := path.Join(outPrefix, path.Base(j.JobArn))
	put := func(key string, body []byte) error {
		_, err := cfg.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(outBucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	if err := put(path.Join(dir, path.Base(inKey)+".out"), out.Bytes()); err != nil {
		return JobFailed, fmt.Sprintf("write output to %s: %v", j.outputURI, err), counts
	}
	manifest, _ := json.Marshal(map[string]int64{"totalRecordCount": counts[0], "processedRecordCount": counts[0], "successRecordCount": counts[1], "errorRecordCount": counts[2]})
	if err := put(path.Join(dir, "manifest.json.out"), manifest); err != nil {
		return JobFailed, fmt.Sprintf("write manifest to %s: %v", j.outputURI, err), counts
	}
	if counts[2] > 0 && counts[1] == 0 {
		return JobFailed, "every record failed", counts
	}
	return JobCompleted, "", counts
}

// answerRecord answers one record's modelInput as the live call would: an Anthropic messages
// body (with anthropic_version) as InvokeModel, anything else as a Converse request, with the
// same checks and the same answer (Server.reply).
func (s *Server) answerRecord(model string, input json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		AnthropicVersion string `json:"anthropic_version"`
	}
	if err := json.Unmarshal(input, &probe); err != nil {
		return nil, err
	}
	if probe.AnthropicVersion != "" {
		var req anthropicRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return nil, err
		}
		p, err := anthropicPrompt(req)
		if err != nil {
			return nil, err
		}
		return json.Marshal(messagesBody(model, s.reply(model, p)))
	}
	var req converseRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, err
	}
	p, err := req.prompt()
	if err != nil {
		return nil, err
	}
	return json.Marshal(converseBody(s.reply(model, p)))
}

// anthropicPrompt reads an Anthropic messages body the way InvokeModel does.
func anthropicPrompt(req anthropicRequest) (prompt, error) {
	var p prompt
	switch {
	case req.MaxTokens <= 0:
		return p, errors.New("max_tokens: required, at least 1")
	case len(req.Messages) == 0:
		return p, errors.New("messages: must not be empty")
	}
	p.maxTokens = req.MaxTokens
	sys, err := textOf(req.System)
	if err != nil {
		return p, fmt.Errorf("system: %w", err)
	}
	p.system = sys
	for i, m := range req.Messages {
		t, err := textOf(m.Content)
		if err != nil {
			return p, fmt.Errorf("messages.%d.%w", i, err)
		}
		if t == "" {
			return p, fmt.Errorf("messages.%d: text content blocks must be non-empty", i)
		}
		p.messages = append(p.messages, turn{m.Role, t})
	}
	return p, nil
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	return buf.Bytes(), err
}
