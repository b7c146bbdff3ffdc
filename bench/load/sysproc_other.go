//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// setParentDeath does nothing where the OS has no parent-death signal: killAll and the
// scenarios' own stops end the children.
func setParentDeath(*exec.Cmd) {}

// syncDisks does nothing here.
func syncDisks() {}

// markTopDir is Linux only.
func markTopDir(string) error { return errors.New("top directories are Linux only") }

// dropCaches is Linux only.
func dropCaches(string) (string, error) {
	return "", errors.New("dropping a device's cached blocks is Linux only")
}
