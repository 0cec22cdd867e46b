mod fixture;
mod flows;
mod records;
mod restarts;
