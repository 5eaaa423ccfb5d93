package modclientcerts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Store is the datamanager store mod_client_certs uses.
const Store = "client_certs"

// PathEncode is util.datamanager's encoding of a host or user name in a
// path: every byte that is not an ASCII letter or digit becomes %xx (lower
// case hex). "example.org" is "example%2eorg".
func PathEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// PathDecode reverses PathEncode (as datamanager does: %xx in either case;
// other bytes stand for themselves). A "%" not followed by two hex digits is
// an error.
func PathDecode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("modclientcerts: %q: %% not followed by two hex digits", s)
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("modclientcerts: %q: %% not followed by two hex digits", s)
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}

// UserFile is one user's client_certs file.
type UserFile struct {
	Host, User string // decoded
	Path       string
}

// ErrNoStore: the directory holds no client_certs store (for the hosts
// asked about).
var ErrNoStore = errors.New("modclientcerts: no client_certs store")

// Scan lists the users' files of the client_certs store under Prosody's
// data directory dir: for each of hosts, dir/<host>/client_certs/*.dat; with
// no hosts, every host directory that has a client_certs store. Files that
// are not *.dat (Prosody's "~" scratch files of an interrupted write) are
// not listed. The result is ordered by host, then user. Errors: the file
// system's; ErrNoStore when a named host has no store or, with no hosts,
// no host has one; a plain error for a file name datamanager did not write.
func Scan(dir string, hosts []string) ([]UserFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("modclientcerts: %s is not a directory", dir)
	}
	if len(hosts) == 0 {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, e.Name(), Store)); err != nil {
				continue
			}
			h, err := PathDecode(e.Name())
			if err != nil {
				return nil, err
			}
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("%w under %s (is it Prosody's data directory, e.g. /var/lib/prosody?)", ErrNoStore, dir)
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	var out []UserFile
	for _, h := range hosts {
		sd := filepath.Join(dir, PathEncode(h), Store)
		ents, err := os.ReadDir(sd)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w for host %s: %s does not exist", ErrNoStore, h, sd)
		}
		if err != nil {
			return nil, err
		}
		var files []UserFile
		for _, e := range ents {
			stem, ok := strings.CutSuffix(e.Name(), ".dat")
			if !ok || !e.Type().IsRegular() {
				continue
			}
			u, err := PathDecode(stem)
			if err != nil || u == "" {
				return nil, fmt.Errorf("modclientcerts: %s: not a user's file name as Prosody writes them", filepath.Join(sd, e.Name()))
			}
			files = append(files, UserFile{Host: h, User: u, Path: filepath.Join(sd, e.Name())})
		}
		slices.SortFunc(files, func(a, b UserFile) int { return strings.Compare(a.User, b.User) })
		out = append(out, files...)
	}
	return out, nil
}
