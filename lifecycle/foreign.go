package lifecycle

import "context"

// foreignKey marks the context of effects that pass on another writer's
// change (Watch).
type foreignKey struct{}

// Foreign reports whether the effect running with ctx passes on a change
// another writer committed (read from the audit log by Watch) rather than
// one this Manager has just committed. Such a change was committed some time
// before its effects run (up to the watch interval), so an effect must not
// take "before the effect" for "before the commit".
func Foreign(ctx context.Context) bool {
	v, _ := ctx.Value(foreignKey{}).(bool)
	return v
}
