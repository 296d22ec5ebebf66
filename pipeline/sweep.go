package pipeline

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sweepAxis is one option of one step and the values a sweep gives it.
type sweepAxis struct {
	Key    string // "prune.ratio"
	Where  string
	Step   int // index into recipe.Steps, set by resolveSweep
	Option string
	Values []value
}

// setting is one point of a sweep grid: a value per axis.
type setting []settingValue

type settingValue struct {
	Key, Option string
	Step        int
	Value       value
}

func (ax sweepAxis) stepKind(r *Recipe) string {
	if ax.Step >= 0 && ax.Step < len(r.Steps) {
		return r.Steps[ax.Step].Kind
	}
	kind, _, _ := strings.Cut(ax.Key, ".")
	return kind
}

func (r *Recipe) parseSweep(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return recipeErr(r.at(v), "sweep: want a mapping (step.option: [values]), not a %s", kindName(v))
	}
	return eachPair(r, v, func(k, val *yaml.Node) error {
		ax := sweepAxis{Key: k.Value, Where: r.at(k), Step: -1}
		if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
			return recipeErr(r.at(val), "sweep: %s wants a non-empty list of values", k.Value)
		}
		for _, n := range val.Content {
			if n.Kind != yaml.ScalarNode {
				return recipeErr(r.at(n), "sweep: %s: each value is a single value, not a %s", k.Value, kindName(n))
			}
			ax.Values = append(ax.Values, value{Text: n.Value, Where: r.at(n)})
		}
		r.Sweep = append(r.Sweep, ax)
		return nil
	})
}

// resolveSweep finds each axis's step and checks its values.
func (r *Recipe) resolveSweep() error {
	for i := range r.Sweep {
		if err := r.resolveAxis(&r.Sweep[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *Recipe) resolveAxis(ax *sweepAxis) error {
	kind, opt, ok := strings.Cut(ax.Key, ".")
	if !ok || opt == "" {
		return recipeErr(ax.Where, "sweep: %q: want step.option, for example prune.ratio", ax.Key)
	}
	ax.Step, ax.Option = -1, opt
	for i, st := range r.Steps {
		if st.Kind != kind {
			continue
		}
		if ax.Step >= 0 {
			return recipeErr(ax.Where, "sweep: %q is ambiguous: steps on %s and %s are both %s", ax.Key, r.Steps[ax.Step].Where, st.Where, kind)
		}
		ax.Step = i
	}
	if ax.Step < 0 {
		return recipeErr(ax.Where, "sweep: %q: the recipe has no %s step", ax.Key, kind)
	}
	for _, v := range ax.Values {
		if err := r.kinds[kind].checkOption(opt, v); err != nil {
			return err
		}
		if err := r.checkFileOption(kind, opt, v); err != nil {
			return err
		}
	}
	return nil
}

// addFlagAxes adds --sweep KEY=V1,V2 and --set KEY=V axes from the
// command line; an axis replaces the recipe's axis of the same key. --set
// is a sweep of one value, which is how a job runs one setting of a
// recipe's grid.
func (r *Recipe) addFlagAxes(flag string, specs []string) error {
	for _, spec := range rejoinCommas(specs) {
		key, vals, ok := strings.Cut(spec, "=")
		where := fmt.Sprintf("--%s %s", flag, spec)
		if !ok || key == "" || vals == "" {
			return usageErrorf("run: %s: want step.option=value%s", where, map[bool]string{true: "[,value...]"}[flag == "sweep"])
		}
		ax := sweepAxis{Key: key, Where: where}
		if flag == "set" {
			ax.Values = []value{{Text: vals, Where: where}}
		} else {
			for _, v := range strings.Split(vals, ",") {
				ax.Values = append(ax.Values, value{Text: strings.TrimSpace(v), Where: where})
			}
		}
		if err := r.resolveAxis(&ax); err != nil {
			return err
		}
		replaced := false
		for i := range r.Sweep {
			if r.Sweep[i].Key == key {
				r.Sweep[i], replaced = ax, true
			}
		}
		if !replaced {
			r.Sweep = append(r.Sweep, ax)
		}
	}
	return nil
}

// settings expands the grid, the first axis varying slowest. A recipe
// without a sweep has one empty setting.
func (r *Recipe) settings() []setting {
	out := []setting{nil}
	for _, ax := range r.Sweep {
		var next []setting
		for _, s := range out {
			for _, v := range ax.Values {
				n := append(append(setting(nil), s...), settingValue{Key: ax.Key, Option: ax.Option, Step: ax.Step, Value: v})
				next = append(next, n)
			}
		}
		out = next
	}
	return out
}

// stepOpts returns step i's options with the setting's values applied.
func (s setting) stepOpts(r *Recipe, i int) []option {
	opts := append([]option(nil), r.Steps[i].Opts...)
	for _, sv := range s {
		if sv.Step != i {
			continue
		}
		replaced := false
		for j := range opts {
			if opts[j].Name == sv.Option {
				opts[j].Value, replaced = sv.Value, true
			}
		}
		if !replaced {
			opts = append(opts, option{Name: sv.Option, Value: sv.Value})
		}
	}
	return opts
}

var slugUnsafe = regexp.MustCompile(`[^A-Za-z0-9.+-]+`)

// slug names a setting's directory: "prune.ratio-0.3_prune.criterion-random".
func (s setting) slug() string {
	parts := make([]string, len(s))
	for i, sv := range s {
		parts[i] = slugUnsafe.ReplaceAllString(sv.Key+"-"+sv.Value.Text, "-")
	}
	return strings.Join(parts, "_")
}

// String is the setting as key=value pairs.
func (s setting) String() string {
	parts := make([]string, len(s))
	for i, sv := range s {
		parts[i] = sv.Key + "=" + sv.Value.Text
	}
	return strings.Join(parts, " ")
}

// rejoinCommas undoes the command-line library's splitting of slice
// flags at commas: an item without "=" continues the item before it, so
// --sweep prune.ratio=0.1,0.3 is one axis again.
func rejoinCommas(items []string) []string {
	var out []string
	for _, it := range items {
		if len(out) > 0 && !strings.Contains(it, "=") {
			out[len(out)-1] += "," + it
			continue
		}
		out = append(out, it)
	}
	return out
}
