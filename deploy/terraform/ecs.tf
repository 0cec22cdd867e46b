resource "aws_cloudwatch_log_group" "cutover" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_security_group" "cutover" {
  name        = var.name
  description = "cutover: metrics and API from Prometheus, AWS APIs out"
  vpc_id      = var.vpc_id

  ingress {
    description     = "metrics, health and API"
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [var.prometheus_security_group_id]
  }

  egress {
    description = "AWS APIs (DynamoDB, ECS, Elastic Load Balancing), gates and hooks"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

locals {
  environment = [
    { name = "CUTOVER_REGION", value = var.region },
    { name = "CUTOVER_TABLE", value = aws_dynamodb_table.desired.name },
    { name = "CUTOVER_LEASE_TABLE", value = aws_dynamodb_table.leases.name },
    { name = "CUTOVER_SHARDS", value = tostring(var.shards) },
    { name = "CUTOVER_LEASE_TTL", value = var.lease_ttl },
    { name = "CUTOVER_LISTEN", value = "0.0.0.0:8080" },
    { name = "CUTOVER_LOG_FORMAT", value = "json" },
    # How services in other accounts are reached (README: Many accounts and regions).
    {
      name = "CUTOVER_ACCOUNTS",
      value = var.target_external_id == "" ? "{role_name = \"${var.target_role_name}\"}" : (
        "{role_name = \"${var.target_role_name}\", external_id = \"${var.target_external_id}\"}"
      )
    },
  ]
  secrets = var.api_token_secret_arn == "" ? [] : [
    { name = "CUTOVER_API_TOKEN", valueFrom = var.api_token_secret_arn },
  ]
}

resource "aws_ecs_task_definition" "cutover" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "cutover"
      image                  = var.image
      essential              = true
      command                = ["run"]
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
      environment            = local.environment
      secrets                = local.secrets
      # The image has no curl: cutover probes its own /healthz.
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/cutover", "probe", "--timeout", "3s", "http://127.0.0.1:8080/healthz"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 20
      }
      # Time for passes in flight to finish and leases to be handed back
      # after SIGTERM (Fargate allows up to 120 s).
      stopTimeout = 60
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.cutover.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "cutover"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "cutover" {
  name            = var.name
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.cutover.arn
  desired_count   = var.replicas
  launch_type     = "FARGATE"

  # A rolling replacement keeps the old replicas until the new ones are
  # healthy; leases move over as the old ones stop.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.cutover.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.cutover.arn
  }
}
