//! The application state and its frame.

pub struct PathscopeApp {}

impl PathscopeApp {
    pub fn new(_cc: &eframe::CreationContext<'_>) -> Self {
        Self {}
    }
}

impl eframe::App for PathscopeApp {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        ui.label("Pathscope");
    }
}
