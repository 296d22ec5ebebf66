package quant

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/upgrade"
)

// upgradeOpset raises the default-domain opset of m to target with the
// upgrade package (a no-op when m is there already).
func upgradeOpset(m *graph.Model, target int64) error {
	_, err := upgrade.To(m, target)
	return err
}

// raiseOpset upgrades m to at least v because the format needs it
// (why), and says so in the report. Call it before finding layers: the
// upgrade replaces the graph's nodes.
func raiseOpset(m *graph.Model, v int64, why string, o *Options, rep *Report) error {
	if m.OpsetVersion("") >= v {
		return nil
	}
	r, err := upgrade.To(m, v)
	if err != nil {
		return fmt.Errorf("quant: %s needs opset %d: %w", why, v, err)
	}
	rep.Upgrade = r
	rep.note(o, "upgraded the model from opset %d to %d (%s needs %d; %d nodes rewritten)", r.From, r.To, why, v, r.Nodes())
	return nil
}
