data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The task role: exactly the actions of deploy/iam/cutover-policy.json,
# statement by statement (a test compares the two).
data "aws_iam_policy_document" "cutover" {
  statement {
    sid = "DesiredRecords"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:Scan",
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.desired.arn]
  }

  # `DELETE /v1/halt` lifts the fleet-wide halt: the one item it deletes.
  statement {
    sid       = "FleetHaltLift"
    actions   = ["dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.desired.arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["halt"]
    }
  }

  statement {
    sid = "DesiredRecordChanges"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetShardIterator",
      "dynamodb:GetRecords",
    ]
    resources = ["${aws_dynamodb_table.desired.arn}/stream/*"]
  }

  statement {
    sid = "ShardLeases"
    actions = [
      "dynamodb:Scan",
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = [aws_dynamodb_table.leases.arn]
  }

  statement {
    sid = "EcsTaskSets"
    actions = [
      "ecs:DescribeServices",
      "ecs:DescribeTaskSets",
      "ecs:CreateTaskSet",
      "ecs:UpdateServicePrimaryTaskSet",
      "ecs:DeleteTaskSet",
    ]
    resources = [
      "arn:${local.partition}:ecs:${var.region}:${local.account}:service/*/*",
      "arn:${local.partition}:ecs:${var.region}:${local.account}:task-set/*/*/*",
    ]
  }

  # Records with driver = "ecs_native": ECS deploys, cutover starts the
  # deployment with UpdateService and answers its PAUSE hooks. The actions
  # and their resource types are those of the Service Authorization
  # Reference for Amazon ECS:
  # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
  statement {
    sid = "EcsNativeDeploymentStarts"
    actions = [
      "ecs:UpdateService",
      "ecs:ListServiceDeployments",
    ]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account}:service/*/*"]
  }

  statement {
    sid = "EcsNativeDeployments"
    actions = [
      "ecs:DescribeServiceDeployments",
      "ecs:ContinueServiceDeployment",
      "ecs:StopServiceDeployment",
    ]
    resources = [
      "arn:${local.partition}:ecs:${var.region}:${local.account}:service/*/*",
      "arn:${local.partition}:ecs:${var.region}:${local.account}:service-deployment/*/*/*",
    ]
  }

  # What a deployment deploys: its target revision's task definition and
  # target groups. Authorized on the service and on the service revision.
  statement {
    sid     = "EcsNativeRevisions"
    actions = ["ecs:DescribeServiceRevisions"]
    resources = [
      "arn:${local.partition}:ecs:${var.region}:${local.account}:service/*/*",
      "arn:${local.partition}:ecs:${var.region}:${local.account}:service-revision/*/*/*",
    ]
  }

  statement {
    sid       = "EcsStoppedTasks"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "ecs:cluster"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account}:cluster/*"]
    }
  }

  statement {
    sid       = "EcsStoppedTaskDetails"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account}:task/*/*"]
  }

  statement {
    sid = "EcsTaskDefinitionsForImageRecords"
    actions = [
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
      "ecs:RegisterTaskDefinition",
    ]
    resources = ["*"]
  }

  # RegisterTaskDefinition with tags (cutover copies the active revision's
  # and adds its own) is also authorized as ecs:TagResource on the new task
  # definition, so tagging is granted only there and only while registering,
  # never on an existing resource:
  # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
  # (resource types and the ecs:CreateAction key of ecs:TagResource:
  # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html)
  statement {
    sid       = "TagTaskDefinitionsOnRegister"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account}:task-definition/*:*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "PassTaskRolesForImageRecords"
    actions   = ["iam:PassRole"]
    resources = ["arn:${local.partition}:iam::${local.account}:role/*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid = "LoadBalancerReads"
    actions = [
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }

  statement {
    sid = "LoadBalancerWeights"
    actions = [
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:ModifyRule",
    ]
    resources = [
      "arn:${local.partition}:elasticloadbalancing:${var.region}:${local.account}:listener/app/*/*/*",
      "arn:${local.partition}:elasticloadbalancing:${var.region}:${local.account}:listener-rule/app/*/*/*/*",
    ]
  }

  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account}:alarm:*"]
  }

  # Records with driver = "codedeploy".
  statement {
    sid = "CodeDeployDeployments"
    actions = [
      "codedeploy:CreateDeployment",
      "codedeploy:GetDeployment",
      "codedeploy:BatchGetDeployments",
      "codedeploy:BatchGetDeploymentTargets",
      "codedeploy:ListDeployments",
      "codedeploy:ContinueDeployment",
      "codedeploy:StopDeployment",
    ]
    resources = ["arn:${local.partition}:codedeploy:${var.region}:${local.account}:deploymentgroup:*/*"]
  }

  statement {
    sid = "CodeDeployAppSpecRevisions"
    actions = [
      "codedeploy:GetDeploymentConfig",
      "codedeploy:RegisterApplicationRevision",
      "codedeploy:GetApplicationRevision",
    ]
    resources = [
      "arn:${local.partition}:codedeploy:${var.region}:${local.account}:deploymentconfig:*",
      "arn:${local.partition}:codedeploy:${var.region}:${local.account}:application:*",
    ]
  }
}

# Services in other accounts: the task role may assume the target role in
# each listed account and in no other (deploy/iam/cutover-assume-policy.json).
# The target roles themselves live in those accounts: their permissions are
# deploy/iam/cutover-target-policy.json, their trust policy
# deploy/iam/cutover-target-trust-policy.json.
data "aws_iam_policy_document" "assume_targets" {
  count = length(var.target_account_ids) == 0 ? 0 : 1
  statement {
    sid       = "AssumeTargetRoles"
    actions   = ["sts:AssumeRole"]
    resources = [for account in var.target_account_ids : "arn:${local.partition}:iam::${account}:role/${var.target_role_name}"]
  }
}

resource "aws_iam_role_policy" "assume_targets" {
  count  = length(var.target_account_ids) == 0 ? 0 : 1
  name   = "assume-target-roles"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.assume_targets[0].json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task" {
  name   = "cutover"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.cutover.json
}

# The execution role: pulling the image, writing logs, reading the token.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_token" {
  count = var.api_token_secret_arn == "" ? 0 : 1
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.api_token_secret_arn]
  }
}

resource "aws_iam_role_policy" "read_token" {
  count  = var.api_token_secret_arn == "" ? 0 : 1
  name   = "read-api-token"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_token[0].json
}
