package compare

import "github.com/imp2/imp2/internal/results"

// Metric is one quantity compared per sweep step: a row of results.Metrics.
type Metric = results.Metric

// Metrics are the compared quantities of results.Metrics, named as in the
// benchstat export.
var Metrics = results.MetricsFor(results.Compared)

func metricByName(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}
