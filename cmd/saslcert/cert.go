package main

import "github.com/urfave/cli/v2"

// certCommand is the "cert" group: commands about client certificates.
func certCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "cert",
		Usage:  "inspect and manage client certificates",
		Action: groupAction,
		Subcommands: []*cli.Command{
			inspectCommand(e),
			certNewCommand(e),
			certIssueCommand(e),
			certListCommand(e),
			certDisableCommand(e),
			certRevokeCommand(e),
		},
	}
}
