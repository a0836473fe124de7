module github.com/kbox-go/kbox

go 1.26.0

require (
	github.com/spf13/pflag v1.0.10
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)
