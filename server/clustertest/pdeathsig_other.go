//go:build !linux

package clustertest

import "os/exec"

// setParentDeathSignal: only Linux has a parent-death signal; elsewhere
// the test's cleanup stops the children.
func setParentDeathSignal(*exec.Cmd) {}
