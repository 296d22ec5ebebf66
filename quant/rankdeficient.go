package quant

// noteRankDeficient warns when GPTQ or RSQ layers had fewer calibration
// rows (tokens, or pixels for convolutions) than inputs. Their Hessians
// are then rank-deficient: the error compensation drives the error into
// directions the calibration data never visits, so on other inputs the
// result can be worse than plain rounding (docs/QUANT.md measures it on a
// 2048-wide decoder layer).
func noteRankDeficient(rep *Report, o *Options) {
	short, widest, fewest := 0, 0, 0
	for _, lr := range rep.Layers {
		if lr.HessianCols == 0 || lr.HessianRows >= lr.HessianCols {
			continue
		}
		if short == 0 || lr.HessianRows < fewest {
			fewest = lr.HessianRows
		}
		short++
		widest = max(widest, lr.HessianCols)
	}
	if short == 0 {
		return
	}
	rep.note(o, "%s: %d of %d layers had fewer calibration rows than inputs (as few as %d rows, inputs up to %d wide): their Hessians are rank-deficient and the result may be worse than rtn on other data; give at least %d rows (more --calib-samples or longer sequences)",
		o.Method, short, len(rep.Layers), fewest, widest, widest)
}
