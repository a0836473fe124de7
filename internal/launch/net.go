package launch

// checkNet validates --net: the guest's network mode (docs/network.md).
func checkNet(v string) (string, error) {
	switch v {
	case "", "host":
		return "host", nil
	case "none":
		return "none", nil
	case "user":
		return "", usagef("--net=user (a user-mode network of the sandbox's own) is not implemented yet: use --net=host or --net=none (docs/network.md)")
	}
	return "", usagef("--net must be host or none, not %q", v)
}
