# One record per ECS service. The stream lets every replica notice a change
# within a second; without it replicas only resync.
resource "aws_dynamodb_table" "desired" {
  name             = "${var.name}-desired"
  billing_mode     = "PAY_PER_REQUEST"
  hash_key         = "service"
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "service"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }
}

# Shard leases, replica heartbeats, the two feed leases (which replicas read
# the records' stream) and the relay items through which the others learn of
# changes. Kept apart from the records so lease renewals and relay writes do
# not flow through the records' stream. Heartbeats of replicas gone for good
# are removed by TTL; no lease decision reads the time.
resource "aws_dynamodb_table" "leases" {
  name         = "${var.name}-leases"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease"

  attribute {
    name = "lease"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
}
