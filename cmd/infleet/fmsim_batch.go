package main

import (
	"flag"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/infleet/infleet/adapters/fmsim"
)

// envFmsimS3Endpoint is the default of `infleet fmsim --s3-endpoint`.
const envFmsimS3Endpoint = "INFLEET_FMSIM_S3_ENDPOINT"

// fmsimBatch holds the flags of fmsim's batch inference control plane.
type fmsimBatch struct {
	s3Endpoint                        *string
	delay                             *time.Duration
	failRecords, failJobs, expireJobs *string
}

func fmsimBatchFlags(fs *flag.FlagSet) *fmsimBatch {
	return &fmsimBatch{
		s3Endpoint:  fs.String("s3-endpoint", os.Getenv(envFmsimS3Endpoint), "S3 endpoint (an emulator such as fauxqs, path-style) that model invocation jobs read their input from and write their output to (default $"+envFmsimS3Endpoint+"; empty: every job fails)"),
		delay:       fs.Duration("batch-delay", 2*time.Second, "how long a model invocation job stays InProgress before its output is written"),
		failRecords: fs.String("batch-fail-records-matching", "", "answer every batch record whose input contains this text with an error record"),
		failJobs:    fs.String("batch-fail-jobs-matching", "", "end Failed every model invocation job holding a record whose input contains this text"),
		expireJobs:  fs.String("batch-expire-jobs-matching", "", "end Expired every model invocation job holding a record whose input contains this text"),
	}
}

// invocations returns the control plane's settings; its S3 client signs with the
// environment's credentials, or a placeholder pair (an emulator accepts any).
func (b *fmsimBatch) invocations() fmsim.Invocations {
	inv := fmsim.Invocations{Delay: *b.delay, FailRecordsMatching: *b.failRecords, FailJobsMatching: *b.failJobs, ExpireJobsMatching: *b.expireJobs}
	if *b.s3Endpoint == "" {
		return inv
	}
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider("fmsim", "fmsim", "")
	if id := os.Getenv("AWS_ACCESS_KEY_ID"); id != "" {
		creds = credentials.NewStaticCredentialsProvider(id, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = defaultEmulatorRegion
	}
	inv.S3 = awss3.New(awss3.Options{
		Region: region, BaseEndpoint: aws.String(*b.s3Endpoint), UsePathStyle: true, Credentials: creds,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return inv
}
