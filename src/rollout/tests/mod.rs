mod checks;
mod codedeploy;
mod codedeploy_records;
mod fixture;
mod flows;
mod gates;
mod records;
mod restarts;
