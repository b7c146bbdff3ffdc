// Command infleet runs foundation-model jobs asynchronously: an HTTP ingress that queues jobs,
// workers that run them, and operator tools. Run `infleet --help` for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// exitUsage is the exit status for a command line or configuration the user must fix.
const exitUsage = 2

// command is one subcommand of the binary.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands returns the binary's subcommands by name: a new table each call, so that nothing in
// the package is shared mutable state.
func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the HTTP ingress and the workers in one process (the embedded default with no config)", runServe},
		"ingress": {"run the HTTP API only: accept and queue jobs, answer queries", runIngress},
		"worker":  {"run workers only; serves /healthz, /readyz and /metrics on --addr", runWorker},
		"init":    {"create every configured resource that is missing (queues, topics, tables, buckets)", runInit},
		"dlq":     {"list, show and redrive dead letters (dlq list | show ID | redrive)", runDLQ},
		"replay":  {"run archived jobs again (same job ids, a replay_name on each)", runReplay},
		"fmsim":   {"run a fault-injecting model server (Bedrock Converse/InvokeModel, OpenAI chat)", runFmsimCommand},
		"submit":  {"submit a job to the HTTP API", runSubmit},
		"status":  {"show a job's status, result or live events", runStatus},
		"usage":   {"show model usage and spend per day, tenant, model and task (the fleet's)", runUsage},
		"version": {"print the version, the commit and the Go version it was built with", runVersion},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(args[1:], stdout, stderr)
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "infleet: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "infleet runs foundation-model jobs asynchronously, at scale.")
	fmt.Fprintln(w, "\nUsage: infleet <command> [flags]\n\nCommands:")
	table := commands()
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, table[n].summary)
	}
	fmt.Fprintln(w, "\nRun `infleet <command> --help` for a command's flags.")
}

// newFlagSet returns a flag set that prints its usage with a one-line description.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: infleet %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit status to stop with, or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	return -1
}

// usageError prints a message saying what to fix and returns exitUsage.
func usageError(stderr io.Writer, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "infleet %s: %s\n", cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "Run `infleet %s --help` for usage.\n", cmd)
	return exitUsage
}

// envOr returns the environment variable's value, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}
