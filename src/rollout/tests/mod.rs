mod checks;
mod fixture;
mod flows;
mod gates;
mod records;
mod restarts;
