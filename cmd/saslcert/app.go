package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Exit statuses shared by every command.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and the answer is "no" (e.g. a certificate is not usable)
	exitUsage   = 2 // wrong usage, or input that cannot be read
)

// env is what commands share: output streams, the clock and the logger.
// Commands take it from their constructor and read e.log only once the app's
// Before has run (it applies --log-format and --log-level). Standard input is
// the app's Reader (cli.Context.App.Reader), which tests replace.
type env struct {
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	log    *slog.Logger
}

// newApp builds the saslcert command line. It writes to stdout and stderr,
// and tells time with now. Run it with run, which prints errors and maps them
// to exit statuses.
func newApp(stdout, stderr io.Writer, now func() time.Time) *cli.App {
	e := &env{stdout: stdout, stderr: stderr, now: now, log: slog.New(slog.DiscardHandler)}
	app := &cli.App{
		Name:      "saslcert",
		HelpName:  "saslcert",
		Usage:     "passwordless XMPP login with client certificates (XEP-0257 + SASL EXTERNAL)",
		Version:   appVersion(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "log-format",
				Value:   "text",
				Usage:   "log format: text or json (logs go to standard error)",
				EnvVars: []string{"SASLCERT_LOG_FORMAT"},
			},
			&cli.StringFlag{
				Name:    "log-level",
				Value:   "info",
				Usage:   "log level: debug, info, warn or error",
				EnvVars: []string{"SASLCERT_LOG_LEVEL"},
			},
		},
		Before: func(c *cli.Context) error {
			l, err := newLogger(stderr, c.String("log-format"), c.String("log-level"))
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			e.log = l
			return nil
		},
		Commands: commands(e),
		Action:   groupAction,
		// run reports errors; urfave/cli must neither print them nor exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
	}
	setUsageErrors(app.Commands)
	return app
}

// commands returns the top-level commands. Each is built by a function in a
// file of its own; add new ones here.
func commands(e *env) []*cli.Command {
	return []*cli.Command{
		certCommand(e),
		prosodyCommand(e),
		ejabberdCommand(e),
		serveCommand(e),
		caCommand(e),
		importCommand(e),
		storeCommand(e),
		apiCommand(e),
	}
}

// run runs app with args (args[0] is the program name), prints any error to
// the app's ErrWriter as "saslcert: <message>" and returns the exit status.
func run(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	// Errors that are not cli.ExitCoders come from urfave/cli's own checks
	// of the command line: wrong usage.
	code := exitUsage
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(app.ErrWriter, "saslcert: %s\n", msg)
	}
	return code
}

// usageErrorf returns an error that exits with exitUsage.
func usageErrorf(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

// usageError is every command's OnUsageError: a bad flag is wrong usage.
func usageError(c *cli.Context, err error, _ bool) error {
	return usageErrorf("%s: %v; see '%s --help'", c.Command.HelpName, err, c.Command.HelpName)
}

// setUsageErrors gives cmds and all their subcommands usageError.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageErrors(c.Subcommands)
	}
}

// groupAction is the action of a command that only groups subcommands: it
// runs when no subcommand or an unknown one is named.
func groupAction(c *cli.Context) error {
	var names []string
	for _, sub := range c.Command.VisibleCommands() {
		if sub.Name != "help" {
			names = append(names, sub.Name)
		}
	}
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unknown command %q (commands: %s); see '%s --help'",
			name, c.Args().First(), strings.Join(names, ", "), name)
	}
	return usageErrorf("%s: missing command (one of: %s); see '%s --help'", name, strings.Join(names, ", "), name)
}

// newLogger returns a logger writing to w in format ("text" or "json") at
// level ("debug", "info", "warn", "error").
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
