package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqRetention keeps each completed task, with its result, for longer than any run.
const asynqRetention = time.Hour

// asynqOptions are the flags of `peers asynq`.
type asynqOptions struct {
	common
	addr    string
	queue   string
	clients int
	keep    bool
}

func (o *asynqOptions) register(fs *flag.FlagSet) {
	o.common.register(fs)
	fs.StringVar(&o.addr, "redis", os.Getenv("INFLEET_TEST_REDIS_ADDR"),
		"Redis `host:port` (default $INFLEET_TEST_REDIS_ADDR)")
	fs.StringVar(&o.queue, "queue", "infleet-bench", "asynq queue of the run; it is flushed before the run and after it")
	fs.IntVar(&o.clients, "clients", 64, "goroutines enqueueing in parallel")
	fs.BoolVar(&o.keep, "keep", false, "keep the queue's tasks and results in Redis after the run")
}

func (o *asynqOptions) check() []string {
	problems := o.common.check()
	if o.addr == "" {
		problems = append(problems, "-redis is required (or set INFLEET_TEST_REDIS_ADDR, e.g. by running under .ci/peers/with-redis.sh)")
	}
	if o.queue == "" || strings.ContainsAny(o.queue, "{}*?[]") {
		problems = append(problems, "-queue must be a plain name (no braces or glob characters)")
	}
	if o.clients < 1 {
		problems = append(problems, "-clients must be at least 1")
	}
	return problems
}

// asynqKey is the Redis key of one of a queue's sets, as asynq names them.
func asynqKey(queue, set string) string { return "asynq:{" + queue + "}:" + set }

// flushQueue deletes every key of queue and removes it from asynq's list of queues.
func flushQueue(ctx context.Context, rdb *redis.Client, queue string) error {
	iter := rdb.Scan(ctx, 0, asynqKey(queue, "*"), 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
			return err
		}
	}
	return rdb.SRem(ctx, "asynq:queues", queue).Err()
}

func runAsynq(ctx context.Context, o asynqOptions, stderr io.Writer) (result, error) {
	res := result{Peer: "asynq", Version: moduleVersion("github.com/hibiken/asynq"), Jobs: o.jobs, Workers: o.workers,
		TaskMS: o.task.Milliseconds(), ResultBytes: o.resultBytes, Settings: map[string]string{}}

	rdb := redis.NewClient(&redis.Options{Addr: o.addr})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "server", "persistence").Result()
	if err != nil {
		return res, fmt.Errorf("ask Redis at %s for INFO (is it up? .ci/peers/with-redis.sh starts one): %w", o.addr, err)
	}
	redisPID := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "redis_version" || k == "aof_enabled") {
			res.Settings["redis_"+strings.TrimPrefix(k, "redis_")] = v
		}
		if ok && k == "process_id" {
			redisPID, _ = strconv.Atoi(v)
		}
	}
	// Redis is one process (its threads are counted with it), on this machine when /proc has it.
	meter := &cpuMeter{server: func() []int { return localProcess(redisPID, "redis-server") }}
	if save, err := rdb.ConfigGet(ctx, "save").Result(); err == nil {
		res.Settings["redis_save"] = fmt.Sprintf("%q", save["save"]) // "" = no RDB snapshots
	}
	if err := flushQueue(ctx, rdb, o.queue); err != nil {
		return res, fmt.Errorf("flush queue %s before the run: %w", o.queue, err)
	}
	if !o.keep {
		defer func() {
			if err := flushQueue(context.WithoutCancel(ctx), rdb, o.queue); err != nil {
				progress(stderr, "asynq: could not flush queue %s after the run: %v", o.queue, err)
			}
		}()
	}

	// Enqueue everything before the workers start, from parallel clients.
	payload, err := json.Marshal(newJobArgs())
	if err != nil {
		return res, err
	}
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: o.addr, PoolSize: o.clients})
	defer client.Close()
	var next atomic.Int64
	var firstID string
	var once sync.Once
	errs := make(chan error, o.clients)
	var wg sync.WaitGroup
	enqStart := time.Now()
	for range min(o.clients, o.jobs) {
		wg.Go(func() {
			for next.Add(1) <= int64(o.jobs) {
				t := asynq.NewTask("summarize", payload)
				ti, err := client.EnqueueContext(ctx, t, asynq.Queue(o.queue), asynq.Retention(asynqRetention))
				if err != nil {
					errs <- err
					return
				}
				once.Do(func() { firstID = ti.ID })
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, fmt.Errorf("enqueue a task: %w", err)
	}
	res.EnqueueSeconds = time.Since(enqStart).Seconds()
	if pending, err := rdb.LLen(ctx, asynqKey(o.queue, "pending")).Result(); err != nil || pending != int64(o.jobs) {
		return res, fmt.Errorf("queue %s holds %d pending tasks after enqueueing %d (%v)", o.queue, pending, o.jobs, err)
	}
	progress(stderr, "asynq: %d tasks enqueued in %.2fs by %d clients", o.jobs, res.EnqueueSeconds, o.clients)

	stored := []byte(`{"text":"` + resultText(o.resultBytes) + `"}`)
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: o.addr}, asynq.Config{
		Concurrency:     o.workers,
		Queues:          map[string]int{o.queue: 1},
		LogLevel:        asynq.WarnLevel,
		ShutdownTimeout: 5 * time.Second,
	})
	res.Settings["queue"] = o.queue
	res.Settings["retention"] = asynqRetention.String()
	res.Settings["server_pool_size"] = "asynq default (10 per GOMAXPROCS)"
	start := time.Now()
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if err := sleepCtx(ctx, o.task); err != nil {
			return err
		}
		_, err := t.ResultWriter().Write(stored)
		return err
	})); err != nil {
		return res, fmt.Errorf("start asynq's server: %w", err)
	}
	defer srv.Shutdown()

	// A task counts once the server has moved it to the completed set, after the handler.
	fin, err := watch(ctx, start, o.jobs, func(ctx context.Context) (int, error) {
		pipe := rdb.Pipeline()
		done := pipe.ZCard(ctx, asynqKey(o.queue, "completed"))
		retry := pipe.ZCard(ctx, asynqKey(o.queue, "retry"))
		archived := pipe.ZCard(ctx, asynqKey(o.queue, "archived"))
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, err
		}
		if bad := retry.Val() + archived.Val(); bad > 0 {
			return 0, fmt.Errorf("%d tasks failed (retry or archived); the server's log on stderr says why", bad)
		}
		return int(done.Val()), nil
	}, meter, stderr)
	if err != nil {
		return res, err
	}
	fin.fill(&res, o.jobs)

	insp := asynq.NewInspectorFromRedisClient(rdb)
	ti, err := insp.GetTaskInfo(o.queue, firstID)
	if err != nil {
		return res, fmt.Errorf("read back task %s: %w", firstID, err)
	}
	if ti.State != asynq.TaskStateCompleted || len(ti.Result) != len(stored) {
		return res, fmt.Errorf("task %s is %s with a %d-byte result, want completed with %d bytes", firstID, ti.State, len(ti.Result), len(stored))
	}
	res.StoredResultBytes = len(ti.Result)
	res.Settings["enqueue_clients"] = strconv.Itoa(o.clients)
	progress(stderr, "asynq: %d tasks in %.2fs from the start, %.0f jobs/s steady", o.jobs, res.Seconds, res.SteadyJobsPerSec)
	return res, nil
}
