"""The capacity and cost model of a deployed stack (``irtcat capacity``): a load of students
in, shards, Pipe lanes, Lambda concurrency, DynamoDB, Firehose and Step Functions throughput
and dollars out. See docs/capacity.md."""
