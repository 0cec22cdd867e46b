# Each task's IP under cutover.<namespace>, so Prometheus scrapes every
# replica (prometheus-scrape.yml).
resource "aws_service_discovery_private_dns_namespace" "cutover" {
  name        = "${var.name}.internal"
  description = "cutover replicas, for Prometheus"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "cutover" {
  name = "cutover"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.cutover.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}
