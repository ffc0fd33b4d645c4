"""HTTP gateway speaking the AWS JSON 1.1 protocol of Glue, for boto3 and the aws CLI."""
