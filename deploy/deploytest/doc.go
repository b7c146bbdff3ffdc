// Package deploytest holds no code: its tests keep the deployment files under deploy/ (the
// Dockerfile and the Kubernetes manifests) in step with the binary and its configuration.
// They read the files, the config schema and cmd/infleet's sources; they need no network and
// no Docker engine, and render the kustomize overlays with kubectl when it is installed.
package deploytest
