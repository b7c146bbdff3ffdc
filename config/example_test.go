package config_test

import (
	"fmt"

	"github.com/infleet/infleet/config"
)

func ExampleLoad() {
	// No file: the embedded default, with environment overrides on top.
	c, err := config.Load("", []string{"INFLEET_TRANSPORT_KIND=kafka", "INFLEET_TRANSPORT_KAFKA_BROKERS=k1:9092,k2:9092"})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Transport.Kind, c.Transport.Kafka.Brokers, c.Transport.Kafka.Group, c.Routes["default"])

	_, err = config.Load("", []string{"INFLEET_WORKERS_CONCURRENCY=0", "INFLEET_LOG_LEVEL=loud"})
	fmt.Println(err)
	// Output:
	// kafka [k1:9092 k2:9092] infleet-workers fast
	// invalid configuration:
	//   log.level: must be one of trace, debug, info, warn, error (set by INFLEET_LOG_LEVEL)
	//   workers.concurrency: must be at least 1 (set by INFLEET_WORKERS_CONCURRENCY)
}
