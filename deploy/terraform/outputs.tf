output "desired_table" {
  value = aws_dynamodb_table.desired.name
}

output "lease_table" {
  value = aws_dynamodb_table.leases.name
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}

output "metrics_dns_name" {
  description = "Every replica's address, for Prometheus's dns_sd_configs."
  value       = "cutover.${aws_service_discovery_private_dns_namespace.cutover.name}"
}
