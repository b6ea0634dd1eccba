//go:build tools

// Package tools pins the Kubo command so that `go build` can name it from this module.
package tools

import _ "github.com/ipfs/kubo/cmd/ipfs"
