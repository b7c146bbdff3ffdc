package kafka_test

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/credentials"

	infkafka "github.com/infleet/infleet/adapters/kafka"
)

// Each configured mechanism becomes the SASL mechanism its brokers know by name; aws-msk-iam
// takes any AWS credentials provider (config.LoadDefaultConfig's chain in infleet).
func ExampleNewSASLMechanism() {
	for _, opts := range []infkafka.SASLOptions{
		{Mechanism: infkafka.SASLPlain, Username: "api-key", Password: "api-secret"},
		{Mechanism: infkafka.SASLScramSHA512, Username: "infleet", Password: "s3cret"},
		{Mechanism: infkafka.SASLAWSMSKIAM, AWSRegion: "eu-west-1",
			AWSCredentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")},
		{Mechanism: infkafka.SASLPlain, Username: "api-key"},
	} {
		m, err := infkafka.NewSASLMechanism(opts)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(m.Name())
	}
	// Output:
	// PLAIN
	// SCRAM-SHA-512
	// AWS_MSK_IAM
	// error: plain needs a username and a password
}
