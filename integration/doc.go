// Package integration tests kitefix against real local stand-ins: the AWS
// adapters against kumo (DynamoDB, SQS, Secrets Manager in-process), each
// Lambda bootstrap under the Lambda Runtime Interface Emulator, and the SAM
// template parsed with goformation. It is its own module so the main go.mod
// stays lean.
package integration
