package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// readPassword returns a password that is never a flag (flags show in ps
// and in shell history): the first line of file if file is set (a file
// every user may read is refused), else the environment variable envVar if
// it is set, else what the user types on the terminal (standard input, not
// echoed; twice when confirm). what names the password in the prompt and in
// errors. An empty password is an error.
func readPassword(e *env, what, file, envVar string, confirm bool) (string, error) {
	switch {
	case file != "":
		fi, err := os.Stat(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if fi.Mode().Perm()&0o004 != 0 {
			return "", fmt.Errorf("%s: %s can be read by every user (mode %04o); run chmod o-rwx on it", what, file, fi.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", fmt.Errorf("%s: the first line of %s is empty", what, file)
		}
		return line, nil
	case os.Getenv(envVar) != "":
		return os.Getenv(envVar), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("%s: standard input is not a terminal to ask on; give it in a file (see --help) or in %s", what, envVar)
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprintf(e.stderr, "%s: ", prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		return string(b), err
	}
	pw, err := ask(strings.ToUpper(what[:1]) + what[1:])
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if pw == "" {
		return "", errors.New(what + ": empty")
	}
	if confirm {
		again, err := ask("Again")
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if again != pw {
			return "", errors.New(what + ": the two entries differ")
		}
	}
	return pw, nil
}
