package worker

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
)

// S3Rule turns created S3 objects into jobs: an object in Bucket whose key has Prefix and
// Suffix becomes a job of Task (with Model and Priority) whose input is the object.
type S3Rule struct {
	Bucket, Prefix, Suffix string
	Task, Model            string
	Priority               messages.Priority
}

func (r S3Rule) matches(bucket, key string) bool {
	return r.Bucket == bucket && strings.HasPrefix(key, r.Prefix) && strings.HasSuffix(key, r.Suffix)
}

// maxEnvelopeDepth bounds envelopes inside envelopes (SNS around EventBridge around a job).
const maxEnvelopeDepth = 3

// NewDecoder returns the decode stage for everything a worker accepts on its queues: job
// messages, S3 event notifications, EventBridge events (S3 "Object Created", or any envelope
// whose detail is a job, with EventBridge's replay-name), and SNS envelopes around either. S3
// objects become jobs through rules, the first matching rule winning; an object no rule
// matches is logged and dropped. A job made from an object has an id derived from the bucket,
// key and version of the object, so a redelivered event maps to the same job.
func NewDecoder(rules []S3Rule, log zerolog.Logger) Decoder {
	d := envelopeDecoder{rules: rules, log: log}
	return d.decode
}

type envelopeDecoder struct {
	rules []S3Rule
	log   zerolog.Logger
}

func (e envelopeDecoder) decode(d Delivery) ([]messages.Job, error) {
	return e.decodeAt(d, 0)
}

func (e envelopeDecoder) decodeAt(d Delivery, depth int) ([]messages.Job, error) {
	if !mayBeEnvelope(d.Payload) {
		return DecodeJob(d)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(d.Payload, &top) != nil || depth >= maxEnvelopeDepth {
		return DecodeJob(d)
	}
	switch {
	case isSNS(top):
		var msg string
		if err := json.Unmarshal(top["Message"], &msg); err != nil {
			return nil, fmt.Errorf("SNS envelope: Message is not a string: %w", err)
		}
		inner := d
		inner.Payload = []byte(msg)
		return e.decodeAt(inner, depth+1)
	case top["Records"] != nil:
		return e.s3Notification(top["Records"])
	case top["detail-type"] != nil && top["detail"] != nil:
		return e.eventBridge(d, top)
	}
	return DecodeJob(d)
}

// envelopeKeys are the top-level keys that tell the envelopes decodeAt unwraps: SNS's
// TopicArn, S3's Records, EventBridge's detail-type.
var envelopeKeys = [][]byte{[]byte(`"TopicArn"`), []byte(`"Records"`), []byte(`"detail-type"`)}

// mayBeEnvelope reports whether payload may be an envelope rather than a job: false only when
// it has no escape and none of envelopeKeys (map keys match exactly), so that a job message is
// decoded once fewer.
func mayBeEnvelope(payload []byte) bool {
	if bytes.IndexByte(payload, '\\') >= 0 {
		return true
	}
	for _, k := range envelopeKeys {
		if bytes.Contains(payload, k) {
			return true
		}
	}
	return false
}

func isSNS(top map[string]json.RawMessage) bool {
	var typ string
	_ = json.Unmarshal(top["Type"], &typ)
	return typ == "Notification" && top["Message"] != nil && top["TopicArn"] != nil
}

// s3Notification turns the ObjectCreated records of an S3 event notification into jobs.
func (e envelopeDecoder) s3Notification(raw json.RawMessage) ([]messages.Job, error) {
	var records []struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				ETag      string `json:"eTag"`
				VersionID string `json:"versionId"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	}
	if err := json.Unmarshal(raw, &records); err != nil {
		return nil, fmt.Errorf("S3 event notification: Records: %w", err)
	}
	var jobs []messages.Job
	for i, r := range records {
		if r.EventSource != "aws:s3" || !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			e.log.Info().Str("event_name", r.EventName).Msg("S3 record is not an object creation; dropped")
			continue
		}
		// S3 notifications URL-encode keys, with + for spaces.
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("S3 event notification: Records[%d].s3.object.key %q: %w", i, r.S3.Object.Key, err)
		}
		version := firstOf(r.S3.Object.VersionID, r.S3.Object.Sequencer, r.S3.Object.ETag)
		if job, ok := e.objectJob(r.S3.Bucket.Name, key, version); ok {
			jobs = append(jobs, job)
		}
	}
	return jobs, nil
}

// eventBridge decodes an EventBridge event: an S3 Object Created event through the rules, or
// an envelope whose detail is a job.
func (e envelopeDecoder) eventBridge(d Delivery, top map[string]json.RawMessage) ([]messages.Job, error) {
	var env struct {
		ID         string `json:"id"`
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		ReplayName string `json:"replay-name"`
	}
	if err := json.Unmarshal(d.Payload, &env); err != nil {
		return nil, fmt.Errorf("EventBridge event: %w", err)
	}
	if env.Source == "aws.s3" && env.DetailType == "Object Created" {
		var detail struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				ETag      string `json:"etag"`
				VersionID string `json:"version-id"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		}
		if err := json.Unmarshal(top["detail"], &detail); err != nil {
			return nil, fmt.Errorf("EventBridge Object Created event: detail: %w", err)
		}
		version := firstOf(detail.Object.VersionID, detail.Object.Sequencer, detail.Object.ETag)
		job, ok := e.objectJob(detail.Bucket.Name, detail.Object.Key, version)
		if !ok {
			return nil, nil
		}
		job.ReplayName = env.ReplayName
		return []messages.Job{job}, nil
	}
	inner := d
	inner.Payload = top["detail"]
	if inner.MessageID == "" || env.ID != "" {
		inner.MessageID = firstOf(env.ID, d.MessageID)
	}
	jobs, err := DecodeJob(inner)
	if err != nil {
		return nil, fmt.Errorf("EventBridge event %q: detail is not a job: %w", env.DetailType, err)
	}
	if env.ReplayName != "" {
		for i := range jobs {
			jobs[i].ReplayName = env.ReplayName
		}
	}
	return jobs, nil
}

// objectJob makes the job of a created object, or reports that no rule matches it.
func (e envelopeDecoder) objectJob(bucket, key, version string) (messages.Job, bool) {
	for _, r := range e.rules {
		if !r.matches(bucket, key) {
			continue
		}
		sum := sha256.Sum256([]byte(bucket + "\x00" + key + "\x00" + version))
		return messages.Job{
			JobID:    "s3-" + hex.EncodeToString(sum[:16]),
			Task:     r.Task,
			Model:    r.Model,
			Priority: r.Priority.OrNormal(),
			Input:    messages.Input{S3URI: "s3://" + bucket + "/" + key},
		}, true
	}
	e.log.Info().Str("bucket", bucket).Msg("created S3 object matches no triggers.s3 rule; dropped")
	return messages.Job{}, false
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
