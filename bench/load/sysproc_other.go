//go:build !linux

package main

import "os/exec"

// setParentDeath does nothing where the OS has no parent-death signal: killAll and the
// scenarios' own stops end the children.
func setParentDeath(*exec.Cmd) {}

// syncDisks does nothing here.
func syncDisks() {}
