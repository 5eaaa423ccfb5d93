package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/enroll/localca"
)

// maxClockSkew bounds --clock-skew: a larger one would let certificates log
// in long after they expired, and must stay below the grace after which
// expired history is pruned (xep0257.DefaultExpiredGrace).
const maxClockSkew = time.Hour

// policyKeys are the settings of a [policy."<domain>"] table.
var policyKeys = []string{"issuer", "lifetime", "allow_self_signed", "trusted_roots", "crl_urls"}

// errConfig: the --config file holds something serve does not know.
var errConfig = errors.New("--config")

// checkConfigKeys reads the TOML file path and refuses, naming the key, any
// top-level key that is not one of serve's settings (flags, without "--"),
// a policy setting outside its [policy."<domain>"] table, and a policy that
// is not a table (e.g. [[policy."example.org"]]). The keys inside a policy
// table are checked by readPolicyFile. Errors wrap errConfig.
func checkConfigKeys(path string, flags []cli.Flag) error {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return fmt.Errorf("%w %s: %w", errConfig, path, err)
	}
	known := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	delete(known, "config")
	delete(known, "check")
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "policy":
			if err := checkPolicyShape(path, raw[k]); err != nil {
				return err
			}
		case known[k]:
		case slices.Contains(policyKeys, k):
			return fmt.Errorf("%w %s: %q is a policy setting: put it in a [policy.\"<domain>\"] table, before any other table", errConfig, path, k)
		default:
			return fmt.Errorf("%w %s: unknown setting %q (settings are serve's flags without the leading --, e.g. plugin-cache-ttl; see 'saslcert serve --help')", errConfig, path, k)
		}
	}
	return nil
}

// checkPolicyShape refuses a policy that is not a table of tables.
func checkPolicyShape(path string, v any) error {
	domains, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w %s: policy must be tables [policy.\"<domain>\"], not %T", errConfig, path, v)
	}
	for d, t := range domains {
		if _, ok := t.(map[string]any); !ok {
			return fmt.Errorf("%w %s: [policy.%q] must be one table ([policy.%q]), not %s", errConfig, path, d, d, tomlKind(t))
		}
	}
	return nil
}

func tomlKind(v any) string {
	switch v.(type) {
	case []map[string]any:
		return "an array of tables ([[...]])"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a value (%T)", v)
}

// errPerm: a file or directory is open to others.
var errPerm = errors.New("unsafe permissions")

// checkPermissions refuses a data directory, CA directory or database that
// others may write, and CA keys that others may read or write. Missing
// files are fine (serve creates them private). Errors wrap errPerm and name
// the file, its mode and the chmod that fixes it.
func checkPermissions(dataDir string) error {
	caDir := filepath.Join(dataDir, caSubdir)
	for _, p := range []struct {
		path string
		bad  os.FileMode
		fix  string
	}{
		{dataDir, 0o022, "go-w"},
		{filepath.Join(dataDir, DBFile), 0o022, "go-w"},
		{caDir, 0o022, "go-w"},
		{filepath.Join(caDir, localca.KeyFile), 0o077, "600"},
		{filepath.Join(caDir, localca.RootKeyFile), 0o077, "600"},
	} {
		fi, err := os.Lstat(p.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if fi, err = os.Stat(p.path); err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
		}
		if m := fi.Mode().Perm(); m&p.bad != 0 {
			who := "writable by group or others"
			if p.bad&0o044 != 0 {
				who = "accessible to group or others"
			}
			return fmt.Errorf("%w: %s is %s (mode %04o); run chmod %s on it", errPerm, p.path, who, m, p.fix)
		}
	}
	return nil
}
