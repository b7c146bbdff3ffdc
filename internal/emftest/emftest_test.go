package emftest

import (
	"strings"
	"testing"
)

func TestCheckRejectsWhatTheSpecForbids(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		`{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"A":"x","M":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["A"]],"Metrics":[{"Name":"M","Unit":"Things"}]}]},"A":"x","M":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"M":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"A":"x"}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"A":"x","M":[` + strings.Repeat("1,", 100) + `1]}`,
	} {
		if _, err := Check([]byte(bad)); err == nil {
			t.Errorf("Check accepted %s", bad)
		}
	}
}
