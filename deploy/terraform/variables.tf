variable "region" {
  description = "Region of the table, the ECS services cutover drives and the load balancers."
  type        = string
}

variable "name" {
  description = "Prefix of every resource made here."
  type        = string
  default     = "cutover"
}

variable "image" {
  description = "cutover's container image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cutover:0.1.0."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster that runs cutover itself (not necessarily the clusters it drives)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets for cutover's tasks; they need a route to the AWS APIs (NAT or VPC endpoints)."
  type        = list(string)
}

variable "prometheus_security_group_id" {
  description = "Security group of the Prometheus that scrapes cutover on port 8080."
  type        = string
}

variable "replicas" {
  description = "Replicas share the services through shard leases; one is enough, two survive a task failure."
  type        = number
  default     = 2
}

variable "shards" {
  description = "How many shards services are divided into (cutover's `shards`); the same for every replica."
  type        = number
  default     = 16
}

variable "lease_ttl" {
  description = "How long a shard lease lasts unrenewed (cutover's `lease_ttl`)."
  type        = string
  default     = "20s"
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "api_token_secret_arn" {
  description = "Secrets Manager secret holding the API token that enables promote/abort/...; empty leaves actions disabled."
  type        = string
  default     = ""
}

variable "target_account_ids" {
  description = "Accounts whose services the records name (keys <region>:<account>:<cluster>/<service>); the task role may assume target_role_name in each, and in no other."
  type        = list(string)
  default     = []
}

variable "target_role_name" {
  description = "The role cutover assumes in each target account (cutover's `accounts.role_name`); its policy is deploy/iam/cutover-target-policy.json."
  type        = string
  default     = "cutover-target"
}

variable "target_external_id" {
  description = "The external id sent with every AssumeRole (cutover's `accounts.external_id`), which the target roles' trust policies require; empty sends none."
  type        = string
  default     = ""
}
