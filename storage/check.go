package storage

import "fmt"

// CheckRecord checks what a store itself can check of a record before
// storing it: an account, a name, DER whose fingerprint is Fingerprint, a
// known Source and, with withState (imports, which keep a record's state),
// a valid or empty State. Errors wrap ErrInvalid.
func CheckRecord(c *Cert, withState bool) error {
	var why string
	switch {
	case c == nil:
		why = "nil record"
	case c.Account == "":
		why = "empty account"
	case c.Name == "":
		why = "empty name"
	case len(c.DER) == 0:
		why = "empty DER"
	case c.Fingerprint != FingerprintOf(c.DER):
		why = "fingerprint does not match DER"
	case c.Source != SourceUpload && c.Source != SourceEnrolled:
		why = fmt.Sprintf("unknown source %q", c.Source)
	case withState && c.State != "" && !c.State.Valid():
		why = fmt.Sprintf("unknown state %q", c.State)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, why)
}

// ActionFor returns the audit action of moving a record to state to, which
// must be StateDisabled or StateRevoked. Errors wrap ErrInvalid.
func ActionFor(to State) (Action, error) {
	switch to {
	case StateDisabled:
		return ActionDisable, nil
	case StateRevoked:
		return ActionRevoke, nil
	}
	return "", fmt.Errorf("%w: cannot set state %q", ErrInvalid, to)
}
